//! Scale benchmark (`scripts/bench.sh scale`).
//!
//! Loads patients straight into the database in batches (10,000, then up to
//! 100,000 by default), and after each size measures over loopback HTTP, as
//! an admin: a filtered, paginated `GET /api/v1/patients` and
//! `GET /api/v1/patients/{id}` of random patients. Prints p50/p99 per size.
//!
//!     bench_scale [--sizes 10000,100000] [--requests 500] [--concurrency 4]

use std::{process::ExitCode, sync::Arc};

use healthcrm::{
    bench::{self, ms, Sample},
    domain::{
        hospital::Hospital,
        patient::{Patient, PatientStatus, TreatmentStatus},
        HospitalId, PatientId, UserId,
    },
};
use mongodb::bson::{doc, DateTime};
use rand::{rngs::StdRng, Rng, SeedableRng};

const COUNTRIES: [&str; 12] = [
    "GB", "DE", "NL", "US", "CA", "FR", "IE", "SE", "NO", "DK", "AE", "SA",
];
const DISEASES: [&str; 10] = [
    "Knee osteoarthritis",
    "Hip dysplasia",
    "Coronary artery disease",
    "Cataract",
    "Obesity",
    "Tooth loss",
    "Infertility",
    "Scoliosis",
    "Kidney stones",
    "Hair loss",
];
const STATUSES: [TreatmentStatus; 5] = [
    TreatmentStatus::Inquiry,
    TreatmentStatus::Ready,
    TreatmentStatus::Coming,
    TreatmentStatus::Completed,
    TreatmentStatus::Denied,
];
const FIRST: [&str; 10] = [
    "James", "Mary", "Ahmed", "Sofia", "Lars", "Emma", "Omar", "Anna", "John", "Fatima",
];
const LAST: [&str; 10] = [
    "Smith", "Jansen", "Müller", "Brown", "Nielsen", "Khan", "Dubois", "Olsen", "Walsh", "Haddad",
];

struct Args {
    sizes: Vec<usize>,
    requests: usize,
    concurrency: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        sizes: vec![10_000, 100_000],
        requests: 500,
        concurrency: 4,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let value = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--sizes" => {
                args.sizes = value
                    .split(',')
                    .map(|s| {
                        s.trim()
                            .parse::<usize>()
                            .map_err(|_| format!("bad size '{s}'"))
                    })
                    .collect::<Result<_, _>>()?;
                args.sizes.sort_unstable();
            }
            "--requests" => args.requests = value.parse().map_err(|_| "bad --requests")?,
            "--concurrency" => args.concurrency = value.parse().map_err(|_| "bad --concurrency")?,
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    Ok(args)
}

fn patient(rng: &mut StdRng, n: usize, admin: UserId, hospitals: &[HospitalId]) -> Patient {
    let name = format!(
        "{} {} {n}",
        FIRST[rng.random_range(0..FIRST.len())],
        LAST[rng.random_range(0..LAST.len())]
    );
    let conditions: Vec<String> = (0..rng.random_range(0..3))
        .map(|_| DISEASES[rng.random_range(0..DISEASES.len())].to_owned())
        .collect();
    let status = STATUSES[rng.random_range(0..STATUSES.len())];
    let now = DateTime::from_millis(
        DateTime::now().timestamp_millis() - rng.random_range(0..(365 * 86_400_000_i64)),
    );
    let mut p = Patient {
        id: PatientId::new(),
        name_lower: name.to_lowercase(),
        name,
        age: Some(rng.random_range(1..90)),
        date_of_birth: None,
        country: COUNTRIES[rng.random_range(0..COUNTRIES.len())].to_owned(),
        contact: None,
        source: Some("web form".into()),
        medical_history_lower: conditions.iter().map(|c| c.to_lowercase()).collect(),
        medical_history: conditions,
        status: PatientStatus::New,
        treatment_status: status,
        denial_reason: (status == TreatmentStatus::Denied).then(|| "not a candidate".to_owned()),
        assigned_to: Some(admin),
        hospital_id: Some(hospitals[rng.random_range(0..hospitals.len())]),
        hospital_history: Vec::new(),
        next_follow_up: None,
        reached: Vec::new(),
        completed_at: None,
        version: 1,
        deleted_at: None,
        deleted_by: None,
        created_at: now,
        created_by: admin,
        updated_at: now,
        updated_by: admin,
    };
    p.note_reached(status, now);
    p
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_scale: {e}\nusage: bench_scale [--sizes 10000,100000] [--requests 500] [--concurrency 4]");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_scale: {e}");
            ExitCode::FAILURE
        }
    }
}

fn row(size: usize, label: &str, s: &Sample) {
    println!(
        "| {size:>7} | {label:<44} | {:>5} | {:>6} | {:>7.1} | {:>7.2} | {:>7.2} |",
        s.latencies.len(),
        s.errors,
        s.per_second(),
        ms(s.percentile(0.5)),
        ms(s.percentile(0.99))
    );
}

async fn run(args: Args) -> Result<(), String> {
    let srv = bench::start(&[]).await?;
    let token = srv.admin_token().await?;
    let admin = healthcrm::repo::Repos::new(&srv.db)
        .users
        .credentials_by_email(bench::ADMIN_EMAIL)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("admin missing")?
        .0
        .id;
    let mut rng = StdRng::seed_from_u64(42);
    let hospitals: Vec<HospitalId> = (0..50).map(|_| HospitalId::new()).collect();
    let hospital_docs: Vec<Hospital> = hospitals
        .iter()
        .enumerate()
        .map(|(i, id)| Hospital {
            id: *id,
            name: format!("Hospital {i}"),
            name_lower: format!("hospital {i}"),
            location: "Istanbul".into(),
            country: "TR".into(),
            contact: None,
            specialties: vec![],
            commission_bps: 1000,
            currency: "EUR".into(),
            active: true,
            created_at: DateTime::now(),
            created_by: Some(admin),
            updated_at: DateTime::now(),
            updated_by: Some(admin),
        })
        .collect();
    srv.db
        .collection::<Hospital>("hospitals")
        .insert_many(hospital_docs)
        .await
        .map_err(|e| e.to_string())?;

    let patients = srv.db.collection::<Patient>("patients");
    let mut ids: Vec<PatientId> = Vec::new();
    println!("| patients | request                                      | ok    | errors | req/s   | p50 ms  | p99 ms  |");
    println!("|---------:|----------------------------------------------|------:|-------:|--------:|--------:|--------:|");
    for &size in &args.sizes {
        let load_started = std::time::Instant::now();
        while ids.len() < size {
            let batch: Vec<Patient> = (0..(size - ids.len()).min(2_000))
                .map(|i| patient(&mut rng, ids.len() + i, admin, &hospitals))
                .collect();
            ids.extend(batch.iter().map(|p| p.id));
            patients
                .insert_many(batch)
                .await
                .map_err(|e| e.to_string())?;
        }
        let count = healthcrm::db::count(&patients, doc! {})
            .await
            .map_err(|e| e.to_string())?;
        eprintln!(
            "loaded {count} patients in {:.1} s",
            load_started.elapsed().as_secs_f64()
        );

        let ids = Arc::new(ids.clone());
        let (http, base, tok) = (srv.http.clone(), srv.base.clone(), token.clone());
        let list = bench::measure(args.concurrency, args.requests, move |i| {
            let page = 1 + i % 5;
            http.get(format!(
                "{base}/api/v1/patients?country=DE&treatment_status=ready&per_page=20&page={page}"
            ))
            .bearer_auth(&tok)
        })
        .await;
        row(
            size,
            "GET /patients?country=DE&treatment_status=ready",
            &list,
        );

        let (http, base, tok) = (srv.http.clone(), srv.base.clone(), token.clone());
        let by_name = bench::measure(args.concurrency, args.requests, move |_| {
            http.get(format!(
                "{base}/api/v1/patients?q=smith&sort=name&per_page=20"
            ))
            .bearer_auth(&tok)
        })
        .await;
        row(size, "GET /patients?q=smith&sort=name", &by_name);

        let (http, base, tok) = (srv.http.clone(), srv.base.clone(), token.clone());
        let get = bench::measure(args.concurrency, args.requests, move |i| {
            let id = ids[(i * 7919) % ids.len()];
            http.get(format!("{base}/api/v1/patients/{id}"))
                .bearer_auth(&tok)
        })
        .await;
        row(size, "GET /patients/{id}", &get);
        if list.errors + by_name.errors + get.errors > 0 {
            srv.finish().await;
            return Err("some requests failed".into());
        }
    }
    srv.finish().await;
    Ok(())
}
