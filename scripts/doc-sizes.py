#!/usr/bin/env python3
"""BSON sizes of a database's documents, for docs/scale.md.

Usage: doc-sizes.py MONGODB_URI DB_NAME [MIGRATIONS_DIR]

Reads every document of every collection (read-only) and prints, per
collection: count, count per patient, and the average / p95 / max of
len(bson.encode(doc)). Then, per index declared in migrations/*.json:
index entries per document (an array field makes one entry per element)
and the average raw key size (KeyString-like: type byte + value). Last,
the sizes of representative audit events and document records, built from
the structs in src/repo/audit.rs and src/domain/document.rs (the demo data
set has neither). Needs only pymongo (which ships bson).
"""
import datetime
import json
import pathlib
import sys
import uuid

import bson
import pymongo


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else 0


def value_at(doc, path):
    for part in path.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def key_bytes(v):
    """Bytes of one key value in an index key (type byte + payload)."""
    if v is None or isinstance(v, bool):
        return 1
    if isinstance(v, str):
        return 2 + len(v.encode())
    if isinstance(v, datetime.datetime):
        return 9
    if isinstance(v, bson.ObjectId):
        return 13
    if isinstance(v, int):
        return 5
    return len(bson.encode({"v": v})) - 6


def index_stats(docs, fields):
    entries, size = 0, 0
    for d in docs:
        values = [value_at(d, f) for f in fields]
        n = 1
        for v in values:
            if isinstance(v, list):
                n *= max(1, len(v))
        mean = sum(
            (sum(map(key_bytes, v)) / len(v) if isinstance(v, list) and v else key_bytes(v))
            for v in values
        )
        entries += n
        size += n * mean
    return entries / max(1, len(docs)), size / max(1, entries)


def row(*cells):
    print("| " + " | ".join(str(c) for c in cells) + " |")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    uri, name = sys.argv[1], sys.argv[2]
    migrations = pathlib.Path(sys.argv[3] if len(sys.argv) > 3 else
                              pathlib.Path(__file__).resolve().parent.parent / "migrations")
    db = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)[name]
    docs = {c: list(db[c].find()) for c in sorted(db.list_collection_names())}
    patients = max(1, len(docs.get("patients", [])))

    row("collection", "docs", "per patient", "avg B", "p95 B", "max B")
    row(*["---"] * 6)
    for c, ds in docs.items():
        sizes = [len(bson.encode(d)) for d in ds]
        avg = round(sum(sizes) / len(sizes)) if sizes else "-"
        row(c, len(ds), f"{len(ds) / patients:.2f}", avg, pct(sizes, 95) or "-", max(sizes, default="-"))

    print()
    row("collection", "index", "entries per doc", "avg raw key B")
    row(*["---"] * 4)
    for spec in sorted(migrations.glob("*.json")):
        m = json.loads(spec.read_text())
        ds = docs.get(m["collection"], [])
        for ix in [{"key": {"_id": 1}}] + m.get("indexes", []):
            fields = list(ix["key"])
            per_doc, key = index_stats(ds, fields) if ds else (0, 0)
            row(m["collection"], ",".join(fields), f"{per_doc:.2f}", f"{key:.1f}" if ds else "-")

    print()
    hexid = lambda: str(bson.ObjectId())  # ids are stored as 24-hex strings
    now = datetime.datetime.now(datetime.timezone.utc)

    def audit(route, patient_ids, targets):
        return {"_id": bson.ObjectId(), "at": now, "actor_id": hexid(), "role": "staff",
                "action": "patients.read", "method": "GET", "route": route, "status": 200,
                "target_ids": targets, "patient_ids": patient_ids,
                "request_id": str(uuid.uuid4()), "ip": "203.0.113.45", "details": None}

    p = hexid()
    samples = {
        "audit: one patient (GET /patients/{id})": audit("/api/v1/patients/{id}", [p], [p]),
        "audit: list page of 20 (GET /patients)": audit("/api/v1/patients", [hexid() for _ in range(20)], []),
        "audit: no patient (GET /dashboard)": audit("/api/v1/dashboard", [], []),
        "documents: one record": {
            "_id": hexid(), "patient_id": p, "category": "medical_report",
            "title": "Cardiology report, March", "treatment_id": hexid(),
            "file_name": "cardiology_report_march.pdf", "file_type": "pdf",
            "size": bson.Int64(1_843_200), "sha256": "ab" * 32, "object": hexid(),
            "sealing": {"alg": "aes-256-gcm-stream-hkdf-sha256-64k", "key_id": "0123456789abcdef"},
            "created_at": now, "created_by": hexid(), "deleted_at": None, "deleted_by": None},
    }
    row("built document", "B")
    row("---", "---")
    for label, d in samples.items():
        row(label, len(bson.encode(d)))


if __name__ == "__main__":
    main()
