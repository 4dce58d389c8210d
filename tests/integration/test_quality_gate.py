"""A failing error-severity check keeps the previous gold versions live, on a real nats-server:
the transformer publishes `nova.v1.quality.failed` naming the check and sample rows, records
the results, and gold only moves again once a corrected export arrives."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, date, datetime

from nats.js.api import ConsumerConfig, DeliverPolicy

from services.ingestor.service import bronze_path
from services.transformer.main import build_app
from shared.broker import connect, ensure_stream
from shared.events import BronzeIngested, GoldUpdated, QualityFailed
from shared.settings import NovaSettings
from shared.storage import Lake
from tests.transformer.conftest import bronze_table

GOOD = [
    {
        "depot_code": "ALMOX-BA",
        "item_code": "010825",
        "item_description": "CABO FLEXIVEL",
        "item_family": "MATERIAL ELETRICO",
        "quantity": 10.0,
        "request_number": "R1",
        "requested_date": date(2025, 3, 3),
        "purchased_date": date(2025, 3, 10),
    },
    {
        "depot_code": "BAJSS002-3",
        "item_code": "020001",
        "item_description": "LUVA VAQUETA",
        "item_family": "EPI",
        "quantity": 2.0,
        "request_number": "R2",
        "requested_date": date(2025, 3, 4),
        "purchased_date": date(2025, 3, 5),
    },
]
# A planner typed 2205 for 2025: a 180-year lead time would poison every reorder point.
TYPO = [{**GOOD[0], "request_number": "R3", "purchased_date": date(2205, 3, 10)}]
FIXED = [{**TYPO[0], "purchased_date": date(2025, 3, 10)}]


def _drop(lake: Lake, name: str, rows: list[dict], when: datetime) -> BronzeIngested:
    digest = hashlib.sha256(repr((name, rows)).encode()).hexdigest()
    table = bronze_table("erp_requisitions", rows, file=name, sha=digest, ingested_at=when)
    path = bronze_path("erp_requisitions", digest, when)
    lake.write_parquet(path, table)
    return BronzeIngested(
        producer="test",
        correlation_id=digest[:16],
        dataset="erp_requisitions",
        bronze_path=path,
        content_sha256=digest,
        source_name=name,
        row_count=table.num_rows,
    )


def test_a_failing_error_check_keeps_gold_live_until_the_data_is_fixed(nats_url, tmp_path):
    settings = NovaSettings(var_dir=tmp_path / "var", nats={"url": nats_url})
    lake = Lake.from_settings(settings.storage)

    async def scenario():
        nc = await connect(settings.nats, name="test")
        js = nc.jetstream()
        await ensure_stream(js, settings.nats)
        updates = await js.pull_subscribe(
            "nova.v1.gold.updated",
            stream=settings.nats.stream,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        failures = await js.pull_subscribe(
            "nova.v1.quality.failed",
            stream=settings.nats.stream,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        app = build_app(settings)
        await app.broker.start()
        try:

            async def publish_and_wait(event: BronzeIngested) -> GoldUpdated:
                await js.publish(event.subject, event.to_bytes())
                message = (await updates.fetch(1, timeout=60))[0]
                await message.ack()
                return GoldUpdated.model_validate_json(message.data)

            first = await publish_and_wait(
                _drop(lake, "a.xlsx", GOOD, datetime(2025, 3, 5, tzinfo=UTC))
            )
            versions_before = {t.table: t.version for t in first.tables}
            dim_item_before = lake.delta_table("gold", "dim_item")
            assert dim_item_before is not None
            items_before = dim_item_before.version()

            blocked = await publish_and_wait(
                _drop(lake, "b.xlsx", TYPO, datetime(2025, 3, 6, tzinfo=UTC))
            )
            failed = QualityFailed.model_validate_json(
                (await failures.fetch(1, timeout=10))[0].data
            )
            items_while_blocked = lake.delta_table("gold", "dim_item").version()
            lead_times = lake.delta_table("gold", "fact_lead_time").to_pyarrow_table()

            fixed = await publish_and_wait(
                _drop(lake, "c.xlsx", FIXED, datetime(2025, 3, 7, tzinfo=UTC))
            )
            items_after = lake.delta_table("gold", "dim_item").version()
        finally:
            await app.broker.stop()
            await nc.close()
        return (
            versions_before,
            items_before,
            blocked,
            failed,
            items_while_blocked,
            lead_times,
            fixed,
            items_after,
        )

    (
        versions_before,
        items_before,
        blocked,
        failed,
        items_while_blocked,
        lead_times,
        fixed,
        items_after,
    ) = asyncio.run(scenario())

    assert "gold.dim_item" in versions_before
    # Blocked: silver took the file, gold did not move, the failure names check and row.
    blocked_tables = {t.table for t in blocked.tables}
    assert "silver.erp_requisitions" in blocked_tables
    assert not {t for t in blocked_tables if t.startswith("gold.")} - {"gold.dq_results"}
    assert items_while_blocked == items_before
    assert lead_times.num_rows == 2, "the typo's line never reached gold"
    assert failed.build_id == blocked.build_id
    [failure] = failed.failures
    assert failure.check == "fact_lead_time_below_ten_years"
    assert failure.failing_rows == 1
    assert failure.sample[0]["request_number"] == "R3"
    assert failure.sample[0]["_source_file"] == "b.xlsx"
    report = lake.read_bytes(failed.report_path or "")
    assert b"fact_lead_time_below_ten_years" in report

    # dq_results holds both builds' results; the blocked one has the failure.
    results = lake.delta_table("gold", "dq_results").to_pyarrow_table().to_pylist()
    blocked_rows = [r for r in results if r["build_id"] == blocked.build_id and not r["passed"]]
    assert [r["check"] for r in blocked_rows if r["severity"] == "error"] == [
        "fact_lead_time_below_ten_years"
    ]

    # The corrected export (same key, later file) wins in silver and unblocks gold.
    assert any(t.table == "gold.dim_item" for t in fixed.tables)
    assert items_after > items_before
