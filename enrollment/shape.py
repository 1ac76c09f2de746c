"""The national shape of BPU registrations: where workers live, what they do, how they came in
and when. One home for the synthetic data of the demo (`manage.py seed_demo`, enrollment/demo.py)
and the national-scale generator (bench/generate.py imports these).

Figures:
- provinces roughly by population (BPS census 2020, millions; the 2022 Papua split
  approximated);
- occupations: farmers the largest group, then traders, online drivers and fishermen (the
  relative sizes are an assumption for synthetic data, not a published breakdown);
- channels: agents (Perisai) bring most registrations, then branches, partners, self-service
  (again an assumption);
- registrations lean to recent dates (the programme grew fast): `registration_day`.
"""

from __future__ import annotations

from bisect import bisect
from collections.abc import Callable, Sequence
from datetime import date
from itertools import accumulate

PROVINCE_POPULATION_M = {
    "11": 5.3, "12": 14.8, "13": 5.5, "14": 6.4, "15": 3.5, "16": 8.5, "17": 2.0, "18": 9.0,
    "19": 1.5, "21": 2.1, "31": 10.6, "32": 48.3, "33": 36.5, "34": 3.7, "35": 41.0, "36": 11.9,
    "51": 4.3, "52": 5.3, "53": 5.3, "61": 5.4, "62": 2.7, "63": 4.1, "64": 3.8, "65": 0.7,
    "71": 2.6, "72": 3.0, "73": 9.1, "74": 2.6, "75": 1.2, "76": 1.4, "81": 1.8, "82": 1.3,
    "91": 1.0, "92": 0.6, "93": 0.5, "94": 1.3, "95": 1.4, "96": 0.6,
}  # fmt: skip
OCCUPATION_WEIGHTS = {
    "petani": 30, "pedagang": 18, "ojol": 12, "nelayan": 9, "buruh_harian": 7, "tukang": 5,
    "peternak": 4, "buruh_tani": 3, "sopir": 3, "kurir": 2, "penjahit": 1.5, "prt": 1.5,
    "pengrajin": 1, "marbot": 1, "seniman": 0.5, "wiraswasta": 1, "profesional": 0.3,
    "lainnya": 0.2,
}  # fmt: skip
CHANNELS = [("agent", 60), ("branch", 15), ("partner", 15), ("self", 10)]
# Share of partner-channel workers whose contributions the partner pays (the rest pay themselves).
SPONSORED_SHARE = 0.55
FEMALE_SHARE = 0.38
JHT_SHARE = 0.2
FIRST = ["Budi", "Siti", "Agus", "Dewi", "Made", "Wayan", "Rina", "Joko", "Nur", "Andi", "Putri",
         "Yohanes", "Ketut", "Fitri", "Rahmat", "Sri", "Hendra", "Lestari", "Asep", "Ujang",
         "Maria", "Fransiskus", "Dian", "Eko", "Yusuf", "Aisyah", "Bayu", "Citra"]  # fmt: skip
FEMALE_FIRST = ["Siti", "Dewi", "Rina", "Nur", "Putri", "Fitri", "Sri", "Lestari", "Maria",
                "Dian", "Aisyah", "Citra"]  # fmt: skip
MALE_FIRST = [n for n in FIRST if n not in FEMALE_FIRST]
LAST = ["Santoso", "Rahayu", "Hidayat", "Saputra", "Wijaya", "Nugroho", "Lubis", "Siregar",
        "Pratama", "Kurniawan", "Susanti", "Daeng", "Simanjuntak", "Manurung", "Tanjung",
        "Setiawan", "Gunawan", "Halim", "Wibowo", "Sembiring"]  # fmt: skip
# Registration day = first + span * r ** REGISTRATION_LEAN (r uniform in [0, 1)): below 1, more
# registrations in recent months.
REGISTRATION_LEAN = 0.6
BIRTH_EPOCH = date(1962, 1, 1)
BIRTH_SPAN_DAYS = 16060  # 44 years: ages about 20 to 64


class Weighted:
    """Draw a key with probability proportional to its weight, from a uniform number in [0, 1)."""

    def __init__(self, weights: Sequence[tuple[str, float]]) -> None:
        self.keys = [k for k, _w in weights]
        self.cum = list(accumulate(w for _k, w in weights))
        self.total = self.cum[-1]

    def pick(self, u: float) -> str:
        return self.keys[bisect(self.cum, u * self.total)]


PROVINCES = Weighted(list(PROVINCE_POPULATION_M.items()))
OCCUPATIONS = Weighted(list(OCCUPATION_WEIGHTS.items()))
CHANNEL_PICK = Weighted(CHANNELS)


def registration_day(u: float, first: date, last: date, lean: float = REGISTRATION_LEAN) -> date:
    """A registration day between `first` and `last` (inclusive of first) for a uniform `u`."""
    return date.fromordinal(first.toordinal() + int((last - first).days * u**lean))


def birth_date(u: float) -> date:
    return date.fromordinal(BIRTH_EPOCH.toordinal() + int(u * BIRTH_SPAN_DAYS))


def income_weights(levels: Sequence[int]) -> list[tuple[str, float]]:
    """Most workers declare one of the lowest income levels: weight 40 / (i+1)^1.3, at least 1."""
    return [(str(level), max(1.0, 40.0 / (i + 1) ** 1.3)) for i, level in enumerate(levels)]


def full_name(r: Callable[[], float], sex: str) -> str:
    names = FEMALE_FIRST if sex == "F" else MALE_FIRST
    return f"{names[int(r() * len(names))]} {LAST[int(r() * len(LAST))]}"
