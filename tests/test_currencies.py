"""Our ISO 4217 table is the one the iso4217 package (kept current upstream) publishes."""

from __future__ import annotations

import textwrap

import iso4217

from cancelkit.core.currencies import ISO_4217_CODES


def test_the_embedded_codes_are_the_current_iso_4217_list() -> None:
    current = {currency.code for currency in iso4217.Currency}
    if current != ISO_4217_CODES:
        listing = textwrap.fill(" ".join(sorted(current)), width=88)
        raise AssertionError(
            f"ISO 4217 changed (iso4217 {iso4217.__version__}): added "
            f"{sorted(current - ISO_4217_CODES)}, withdrawn {sorted(ISO_4217_CODES - current)}."
            f" Paste into core/currencies.py:\n{listing}"
        )
