//! The demo's fixed data: coordinators, treatments offered, partner
//! hospitals, where patients come from and what they are called.

pub(super) const STAFF: [(&str, &str); 4] = [
    ("Amira Haddad", "amira.haddad"),
    ("Lukas Becker", "lukas.becker"),
    ("Priya Nair", "priya.nair"),
    ("Tomás Ruiz", "tomas.ruiz"),
];

/// A treatment a hospital offers: its specialty, the disease it treats and
/// its price range in major units.
pub(super) struct Offer {
    pub(super) specialty: &'static str,
    pub(super) treatment: &'static str,
    pub(super) disease: &'static str,
    pub(super) price: (i64, i64),
}

pub(super) const OFFERS: [Offer; 12] = [
    Offer {
        specialty: "orthopaedics",
        treatment: "knee replacement",
        disease: "Knee osteoarthritis",
        price: (7_000, 14_000),
    },
    Offer {
        specialty: "orthopaedics",
        treatment: "hip replacement",
        disease: "Hip osteoarthritis",
        price: (8_000, 15_000),
    },
    Offer {
        specialty: "orthopaedics",
        treatment: "spinal fusion",
        disease: "Degenerative disc disease",
        price: (12_000, 22_000),
    },
    Offer {
        specialty: "cardiology",
        treatment: "coronary bypass",
        disease: "Coronary artery disease",
        price: (12_000, 25_000),
    },
    Offer {
        specialty: "cardiology",
        treatment: "angioplasty with stent",
        disease: "Coronary artery disease",
        price: (5_000, 9_000),
    },
    Offer {
        specialty: "ophthalmology",
        treatment: "cataract surgery",
        disease: "Cataract",
        price: (1_200, 3_000),
    },
    Offer {
        specialty: "ophthalmology",
        treatment: "LASIK",
        disease: "Myopia",
        price: (1_000, 2_500),
    },
    Offer {
        specialty: "dentistry",
        treatment: "dental implants",
        disease: "Tooth loss",
        price: (2_000, 8_000),
    },
    Offer {
        specialty: "bariatrics",
        treatment: "gastric sleeve",
        disease: "Obesity",
        price: (5_000, 9_000),
    },
    Offer {
        specialty: "fertility",
        treatment: "IVF cycle",
        disease: "Infertility",
        price: (4_000, 8_000),
    },
    Offer {
        specialty: "hair restoration",
        treatment: "hair transplant",
        disease: "Androgenetic alopecia",
        price: (1_800, 4_000),
    },
    Offer {
        specialty: "oncology",
        treatment: "proton therapy",
        disease: "Prostate cancer",
        price: (20_000, 40_000),
    },
];

pub(super) struct DemoHospital {
    pub(super) name: &'static str,
    pub(super) city: &'static str,
    pub(super) country: &'static str,
    pub(super) specialties: &'static [&'static str],
    /// `None`: no commission terms yet (the earnings are agreed per quote).
    pub(super) commission_bps: Option<i32>,
    pub(super) currency: &'static str,
    pub(super) contact: (&'static str, &'static str, &'static str),
}

pub(super) const HOSPITALS: [DemoHospital; 15] = [
    DemoHospital {
        name: "Bosphorus Medical Center",
        city: "Istanbul",
        country: "TR",
        specialties: &["orthopaedics", "cardiology", "bariatrics", "oncology"],
        commission_bps: Some(1500),
        currency: "EUR",
        contact: (
            "Elif Demir",
            "international@bosphorus-medical.example",
            "+90 212 555 0101",
        ),
    },
    DemoHospital {
        name: "Anatolia Orthopaedic Hospital",
        city: "Antalya",
        country: "TR",
        specialties: &["orthopaedics"],
        commission_bps: Some(1800),
        currency: "EUR",
        contact: (
            "Murat Kaya",
            "patients@anatolia-ortho.example",
            "+90 242 555 0144",
        ),
    },
    DemoHospital {
        name: "Aegean Eye & Dental Institute",
        city: "Izmir",
        country: "TR",
        specialties: &["ophthalmology", "dentistry", "hair restoration"],
        commission_bps: Some(2000),
        currency: "EUR",
        contact: (
            "Zeynep Arslan",
            "care@aegean-eye.example",
            "+90 232 555 0170",
        ),
    },
    DemoHospital {
        name: "Deccan Heart Institute",
        city: "Hyderabad",
        country: "IN",
        specialties: &["cardiology", "oncology"],
        commission_bps: Some(1200),
        currency: "USD",
        contact: (
            "Ravi Menon",
            "intl@deccan-heart.example",
            "+91 40 5550 1200",
        ),
    },
    DemoHospital {
        name: "Marina Multispeciality Hospital",
        city: "Chennai",
        country: "IN",
        specialties: &["orthopaedics", "fertility", "bariatrics", "ophthalmology"],
        commission_bps: Some(1000),
        currency: "USD",
        contact: (
            "Lakshmi Iyer",
            "global@marina-hospital.example",
            "+91 44 5550 3300",
        ),
    },
    DemoHospital {
        name: "Chao Phraya International Hospital",
        city: "Bangkok",
        country: "TH",
        specialties: &["cardiology", "orthopaedics", "fertility", "oncology"],
        commission_bps: Some(1300),
        currency: "USD",
        contact: (
            "Siriporn Chai",
            "referrals@chaophraya-intl.example",
            "+66 2 555 0199",
        ),
    },
    DemoHospital {
        name: "Andaman Wellness Hospital",
        city: "Phuket",
        country: "TH",
        specialties: &["dentistry", "hair restoration", "bariatrics"],
        commission_bps: None,
        currency: "USD",
        contact: (
            "Niran Wong",
            "welcome@andaman-wellness.example",
            "+66 76 555 0123",
        ),
    },
    DemoHospital {
        name: "Rhein Klinik",
        city: "Düsseldorf",
        country: "DE",
        specialties: &["oncology", "orthopaedics", "cardiology"],
        commission_bps: Some(800),
        currency: "EUR",
        contact: (
            "Dr. Jana Vogel",
            "international@rhein-klinik.example",
            "+49 211 555 0100",
        ),
    },
    DemoHospital {
        name: "Clínica Mediterránea",
        city: "Barcelona",
        country: "ES",
        specialties: &["fertility", "ophthalmology", "dentistry"],
        commission_bps: Some(1100),
        currency: "EUR",
        contact: (
            "Marta Soler",
            "pacientes@clinica-mediterranea.example",
            "+34 93 555 0150",
        ),
    },
    DemoHospital {
        name: "Hospital Bajío Internacional",
        city: "Guadalajara",
        country: "MX",
        specialties: &["bariatrics", "orthopaedics", "cardiology"],
        commission_bps: Some(1400),
        currency: "USD",
        contact: (
            "Carlos Méndez",
            "international@bajio-hospital.example",
            "+52 33 5550 0110",
        ),
    },
    DemoHospital {
        name: "Frontera Dental & Surgical",
        city: "Tijuana",
        country: "MX",
        specialties: &["dentistry", "bariatrics"],
        commission_bps: Some(1700),
        currency: "USD",
        contact: (
            "Ana Robles",
            "hola@frontera-dental.example",
            "+52 664 555 0177",
        ),
    },
    DemoHospital {
        name: "Han River Medical Center",
        city: "Seoul",
        country: "KR",
        specialties: &["oncology", "cardiology", "ophthalmology"],
        commission_bps: Some(1000),
        currency: "USD",
        contact: ("Kim Min-ji", "global@hanriver-mc.example", "+82 2 555 0133"),
    },
    DemoHospital {
        name: "Gangnam Restoration Clinic",
        city: "Seoul",
        country: "KR",
        specialties: &["hair restoration", "dentistry"],
        commission_bps: Some(1900),
        currency: "USD",
        contact: (
            "Park Ji-ho",
            "intl@gangnam-restoration.example",
            "+82 2 555 0188",
        ),
    },
    DemoHospital {
        name: "Danube Dental Clinic",
        city: "Budapest",
        country: "HU",
        specialties: &["dentistry"],
        commission_bps: Some(2000),
        currency: "EUR",
        contact: ("Réka Szabó", "info@danube-dental.example", "+36 1 555 0160"),
    },
    DemoHospital {
        name: "Buda Hills Eye Hospital",
        city: "Budapest",
        country: "HU",
        specialties: &["ophthalmology", "orthopaedics"],
        commission_bps: Some(1500),
        currency: "EUR",
        contact: (
            "Gábor Tóth",
            "patients@budahills-eye.example",
            "+36 1 555 0190",
        ),
    },
];

/// Where patients write in from: country, dialling code, and the name
/// pool to draw from.
pub(super) const COUNTRIES: [(&str, &str, usize); 20] = [
    ("GB", "+44 7700 9", 0),
    ("IE", "+353 85 55", 0),
    ("US", "+1 202 555", 0),
    ("CA", "+1 613 555", 0),
    ("AU", "+61 491 57", 0),
    ("NZ", "+64 21 555", 0),
    ("DE", "+49 151 555", 1),
    ("NL", "+31 6 5555", 1),
    ("BE", "+32 470 55", 1),
    ("CH", "+41 79 555", 1),
    ("FR", "+33 6 5555", 1),
    ("SE", "+46 70 555", 2),
    ("NO", "+47 40 555", 2),
    ("DK", "+45 20 555", 2),
    ("AE", "+971 50 555", 3),
    ("SA", "+966 50 555", 3),
    ("KW", "+965 5555", 3),
    ("QA", "+974 3355", 3),
    ("NG", "+234 803 555", 4),
    ("KE", "+254 712 555", 4),
];

pub(super) const NAMES: [(&[&str], &[&str]); 5] = [
    (
        &[
            "James", "Mary", "Oliver", "Emily", "Jack", "Sophie", "Liam", "Grace", "Noah", "Chloe",
        ],
        &[
            "Smith", "Walsh", "Brown", "Taylor", "Murphy", "Wilson", "Clarke", "Evans", "Kelly",
            "Reid",
        ],
    ),
    (
        &[
            "Lukas", "Anna", "Daan", "Lotte", "Jonas", "Léa", "Hugo", "Marie", "Felix", "Emma",
        ],
        &[
            "Müller", "Jansen", "Peeters", "Dubois", "Schmid", "de Vries", "Fischer", "Lambert",
            "Weber", "Bakker",
        ],
    ),
    (
        &[
            "Lars", "Ingrid", "Erik", "Astrid", "Magnus", "Sofie", "Anders", "Freja", "Nils",
            "Maja",
        ],
        &[
            "Nielsen",
            "Olsen",
            "Johansson",
            "Hansen",
            "Lindqvist",
            "Berg",
            "Larsen",
            "Andersson",
            "Dahl",
            "Holm",
        ],
    ),
    (
        &[
            "Ahmed", "Fatima", "Omar", "Layla", "Khalid", "Noura", "Yousef", "Mariam", "Hassan",
            "Aisha",
        ],
        &[
            "Al-Sayed",
            "Haddad",
            "Al-Mansouri",
            "Khan",
            "Al-Otaibi",
            "Nasser",
            "Al-Kuwari",
            "Saleh",
            "Hamdan",
            "Farouk",
        ],
    ),
    (
        &[
            "Chinedu", "Ngozi", "Tunde", "Amara", "Kamau", "Wanjiru", "Emeka", "Achieng", "Segun",
            "Zawadi",
        ],
        &[
            "Okafor", "Adeyemi", "Mwangi", "Otieno", "Eze", "Njoroge", "Balogun", "Kiprop",
            "Okonkwo", "Wambui",
        ],
    ),
];

pub(super) const SOURCES: [&str; 7] = [
    "website",
    "referral",
    "google ads",
    "facebook",
    "whatsapp",
    "partner clinic",
    "health fair",
];

pub(super) const DENIALS: [&str; 4] = [
    "Not a surgical candidate: BMI above the hospitals' limit",
    "Reports show the condition needs treatment at home first",
    "Chose to be treated at home",
    "No quote within the patient's budget",
];
