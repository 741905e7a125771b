"""cancelkit benchmarks: ``python benchmarks/run.py`` (add ``--quick`` for a fast pass).

Prints medians of several runs, each against a baseline measured in the same run:

1. translate: a 5-line Mirakl request through ``Client.translate`` + wire
   serialisation, against building the same body dict by hand and
   ``json.dumps``-ing it. The ratio is what we track.
2. start-up: ``cancelkit --help`` wall time, against ``python -c "import click"``.
3. the plugin API's run-time cost (``benchmarks/plugin_api.py``): CLI ``translate``
   and ``--help`` against bare click, modules ``translate`` imports, module switches
   in one send.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from cancelkit.core.client import Client

LINES = 5


def canonical_request() -> dict[str, Any]:
    return {
        "order_id": "0024_COMMERCIAL_ID-A",
        "reason": "CUSTOMER_REQUEST",
        "currency": "USD",
        "lines": [
            {
                "line_id": f"0002_3202630-A-{i}",
                "quantity": 1,
                "product_id": f"1000{i}",
                "price": "15.00",
                "shipping_price": "8.00",
                "taxes": [{"code": "Tax1", "amount": "1.00"}],
                "shipping_taxes": [{"code": "ShippingTax1", "amount": "3.00"}],
            }
            for i in range(LINES)
        ],
    }


def by_hand(data: dict[str, Any]) -> str:
    """The baseline: the same Mirakl body, built directly, no validation."""
    currency = data["currency"]
    body = {
        "cancelations": [
            {
                "order_line_id": line["line_id"],
                "product_id": line["product_id"],
                "quantity": line["quantity"],
                "reason": "CUSTOMER_CANCELATION",
                "price": {"amount": line["price"], "currency": currency},
                "shipping_price": {"amount": line["shipping_price"], "currency": currency},
                "taxes": [
                    {"code": t["code"], "amount": {"amount": t["amount"], "currency": currency}}
                    for t in line["taxes"]
                ],
                "shipping_taxes": [
                    {"code": t["code"], "amount": {"amount": t["amount"], "currency": currency}}
                    for t in line["shipping_taxes"]
                ],
            }
            for line in data["lines"]
        ]
    }
    return json.dumps(body)


def per_second(fn: Callable[[], object], iterations: int) -> float:
    start = time.perf_counter()
    for _ in range(iterations):
        fn()
    return iterations / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    args = parser.parse_args()
    runs, iterations = (3, 300) if args.quick else (7, 2000)

    client = Client(env={})
    data = canonical_request()
    client.translate(data, "mirakl")  # warm up: plugins loaded once per client
    ours_fn = lambda: client.translate(data, "mirakl").body_bytes()  # noqa: E731
    base_fn = lambda: by_hand(data)  # noqa: E731
    ours, base = [], []
    for _ in range(runs):  # interleaved, so drift hits both alike
        ours.append(per_second(ours_fn, iterations))
        base.append(per_second(base_fn, iterations))
    ours_median, base_median = statistics.median(ours), statistics.median(base)
    print(f"translate, {LINES}-line Mirakl request ({runs} runs x {iterations} calls)")
    print(f"  cancelkit translate + serialise: {ours_median:10,.0f} /s  (median)")
    print(f"  baseline dict + json.dumps:      {base_median:10,.0f} /s  (median)")
    print(f"  ratio baseline/cancelkit:        {base_median / ours_median:10.1f} x")

    # CLI start-up is measured in plugin_api.py (interleaved, bytecode cached).


if __name__ == "__main__":
    main()
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    import plugin_api

    plugin_api.main()
