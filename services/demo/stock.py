"""Stock movements and a stock-on-hand snapshot that agree with the demo workbook's demand.

Each (depot, material) pair that the workbook's requisitions used in the last year keeps a
stock record. A day-by-day simulation over the movement window issues what the requisitions ask
for (SAÍDA, only what is on the shelf), refills sites from the central warehouse when they fall
to their reorder point (TRANSFERÊNCIA), buys for the central warehouse from the item's suppliers
(ENTRADA), and books the odd inventory count (AJUSTE). The snapshot is the simulation's closing
balance, so movements and positions tell one story. Services are never stocked.
"""

from __future__ import annotations

import csv
import io
import math
import random
import statistics
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from services.demo.catalogue import (
    CENTRAL_DEPOT,
    NO_DEPOT,
    DemoCatalogue,
    DemoItem,
    RequisitionLine,
    request_numbers,
)

MOVEMENT_HEADERS = (
    "DATA MOVIMENTO",
    "DEPÓSITO",
    "PRODUTO/SERVIÇO",
    "MATERIAL",
    "TIPO MOVIMENTO",
    "QUANTIDADE",
    "U.M.",
    "DOCUMENTO",
    "VALOR UNITÁRIO",
)
POSITION_HEADERS = (
    "DATA POSIÇÃO",
    "DEPÓSITO",
    "PRODUTO/SERVIÇO",
    "MATERIAL",
    "SALDO",
    "U.M.",
    "CUSTO MÉDIO",
)
RECEIPT = "ENTRADA"
ISSUE = "SAÍDA"
ADJUSTMENT = "AJUSTE"
TRANSFER = "TRANSFERÊNCIA"
MOVEMENT_TYPES = (RECEIPT, ISSUE, ADJUSTMENT, TRANSFER)

MOVEMENT_DAYS = 180
TRACKED_DAYS = 365  # a depot keeps a stock record for what it used within a year
TRANSIT_DAYS = (1, 6)  # central warehouse to a site, by truck
SITE_COVER_DAYS = 90
CENTRAL_COVER_DAYS = 180

# Median unit price in reais per family; log-normal spread puts some tools above R$ 1.000,00.
FAMILY_PRICE = {
    "MATERIAL ELETRICO": 25.0,
    "FERRO E AÇO": 18.0,
    "EPI": 45.0,
    "MATERIAL CIVIL": 30.0,
    "FERRAMENTAS E EQUIPAMENTOS": 180.0,
    "PINTURA": 60.0,
    "MATERIAL DE LIMPEZA": 12.0,
    "ABRASIVOS": 9.0,
    "SINALIZADORES": 40.0,
    "OLEOS E LUBRIFICANTES": 35.0,
    "INFORMATICA": 90.0,
    "PAPELARIA": 15.0,
    "SUPRIMENTOS ADMINISTRATIVO": 10.0,
}
# The warehouse buys cable and wire by the 1.000 m reel and steel and cement by the tonne, which
# is where four-digit quantities come from.
LOT_SIZE = {"MT": 1000.0, "KG": 1000.0, "UN": 10.0, "PC": 10.0, "M³": 5.0, "M2": 10.0}
# Weighed and measured units carry decimals through the books; the rest are counted.
FRACTIONAL_UNITS = frozenset({"MT", "KG", "M³", "M2", "LT"})

# The stock module's product master keeps the accents that the purchasing report strips, so the
# same code reads "CABO FLEXIVEL" in the workbook and "CABO FLEXÍVEL" here.
ACCENTED_WORDS = {
    "AGUA": "ÁGUA",
    "ADVERTENCIA": "ADVERTÊNCIA",
    "CAFE": "CAFÉ",
    "DESCARTAVEL": "DESCARTÁVEL",
    "ELETRICA": "ELÉTRICA",
    "FLEXIVEL": "FLEXÍVEL",
    "HIDRAULICO": "HIDRÁULICO",
    "LA": "LÃ",
    "MARMORE": "MÁRMORE",
    "MEDIA": "MÉDIA",
    "OCULOS": "ÓCULOS",
    "OLEO": "ÓLEO",
    "PROTECAO": "PROTEÇÃO",
    "SOLUVEL": "SOLÚVEL",
    "TABUA": "TÁBUA",
    "TENSAO": "TENSÃO",
    "VERGALHAO": "VERGALHÃO",
    "ZARCAO": "ZARCÃO",
}


@dataclass(frozen=True)
class Movement:
    day: date
    depot: str
    item: DemoItem
    kind: str
    quantity: float
    document: str
    unit_value: float | None


@dataclass(frozen=True)
class Position:
    depot: str
    item: DemoItem
    balance: float
    average_cost: float | None


@dataclass
class _Shelf:
    """One stock record during the simulation."""

    depot: str
    item: DemoItem
    reorder_point: float
    order_up_to: float
    stock: float
    average_cost: float | None
    lead_days: float  # median days from order to shelf
    review_weekday: int  # the site's weekly truck: it asks for stock on that day only
    replenished: bool  # a few records are being run down and are never refilled
    on_order: float = 0.0
    demand: list[tuple[date, float, int]] = field(default_factory=list)  # day, quantity, request

    def receive(self, quantity: float, unit_value: float | None) -> None:
        if unit_value is not None:
            held = self.stock * (self.average_cost or unit_value)
            self.average_cost = (held + quantity * unit_value) / (self.stock + quantity)
        self.move(quantity)

    def move(self, quantity: float) -> None:
        # Kept to the cent, so float dust never prints as "-0,00".
        self.stock = max(0.0, round(self.stock + quantity, 2))


@dataclass(frozen=True)
class StockHistory:
    movements: list[Movement]
    positions: list[Position]


def simulate_stock(
    rng: random.Random,
    catalogue: DemoCatalogue,
    lines: list[RequisitionLine],
    end: date,
) -> StockHistory:
    start = end - timedelta(days=MOVEMENT_DAYS - 1)
    tracked_from = end - timedelta(days=TRACKED_DAYS - 1)
    numbers = request_numbers(lines)
    workbook_depots = {line.depot for line in lines}
    # Only codes the workbook shows, so every record joins back to a requisition.
    has_central = CENTRAL_DEPOT in workbook_depots
    yearly: dict[DemoItem, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    # (depot, code) -> request number -> (day, quantity). A request that lists one material
    # twice is issued once, so (document, material, depot, type) stays a key of the movements.
    demand: dict[tuple[str, str], dict[int, tuple[date, float]]] = defaultdict(dict)
    for line, number in zip(lines, numbers, strict=True):
        if line.depot == NO_DEPOT or line.item.family.startswith("SERVIÇOS"):
            continue
        if line.day >= tracked_from:
            yearly[line.item][line.depot] += float(line.quantity)
        if line.day >= start:
            requests = demand[(line.depot, line.item.code)]
            _, asked = requests.get(number, (line.day, 0.0))
            requests[number] = (line.day, asked + float(line.quantity))

    prices = {item.code: _base_price(rng, item) for item in yearly}
    documents = _Documents(rng)
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    inflation = 1.0 + 0.004 * months  # purchase prices creep up over the window
    movements: list[Movement] = []
    positions: list[Position] = []
    for item, by_depot in yearly.items():
        price = prices[item.code]
        supplier_lead = statistics.median(catalogue.lead_time_median[s] for s in item.suppliers)
        site_lead = sum(TRANSIT_DAYS) / 2 if has_central else supplier_lead
        shelves = {
            depot: _shelf(
                rng, depot, item, by_depot[depot] / TRACKED_DAYS, site_lead, price, SITE_COVER_DAYS
            )
            for depot in sorted(by_depot)
            if depot != CENTRAL_DEPOT
        }
        central: _Shelf | None = None
        if has_central:
            # The warehouse plans on the whole network's demand and buys for half a year.
            daily = sum(by_depot.values()) / TRACKED_DAYS
            central = _shelf(
                rng, CENTRAL_DEPOT, item, daily, supplier_lead, price, CENTRAL_COVER_DAYS
            )
            central.replenished = True
            shelves[CENTRAL_DEPOT] = central
        for depot, shelf in shelves.items():
            requests = demand.get((depot, item.code), {})
            shelf.demand = sorted((day, asked, n) for n, (day, asked) in requests.items())
        movements += _run_days(rng, item, shelves, central, start, end, price, inflation, documents)
        for depot in sorted(shelves):
            shelf = shelves[depot]
            cost = None if rng.random() < 0.06 else shelf.average_cost
            positions.append(Position(depot, item, shelf.stock, cost))

    movements.sort(key=lambda m: (m.day, m.document, m.depot, m.item.code))
    movements = documents.renumber(movements)
    positions.sort(key=lambda p: (p.depot, p.item.code))
    return StockHistory(movements, positions)


def _run_days(
    rng: random.Random,
    item: DemoItem,
    shelves: dict[str, _Shelf],
    central: _Shelf | None,
    start: date,
    end: date,
    price: float,
    inflation: float,
    documents: _Documents,
) -> list[Movement]:
    out: list[Movement] = []
    arrivals: dict[date, list[tuple[_Shelf, str, float, float | None, str]]] = defaultdict(list)
    issues: dict[date, list[tuple[_Shelf, float, int]]] = defaultdict(list)
    for shelf in shelves.values():
        for day, quantity, number in shelf.demand:
            # Issued the day of the request or a little later, never after the export.
            issued = min(end, day + timedelta(days=rng.choice((0, 0, 0, 1, 2))))
            issues[issued].append((shelf, quantity, number))
    counts = {
        depot: start + timedelta(days=rng.randrange(MOVEMENT_DAYS))
        for depot in shelves
        if rng.random() < 0.12
    }
    day = start
    while day <= end:
        progress = (day - start).days / MOVEMENT_DAYS
        for shelf, kind, quantity, value, document in arrivals.pop(day, []):
            shelf.on_order -= quantity
            shelf.receive(quantity, value)
            out.append(Movement(day, shelf.depot, item, kind, quantity, document, value))
        for shelf, wanted, number in issues.pop(day, []):
            quantity = _round_down(min(wanted, shelf.stock), item)
            if quantity <= 0:
                continue  # nothing on the shelf: the site makes do, the ERP books nothing
            shelf.move(-quantity)
            value = None if rng.random() < 0.15 else shelf.average_cost
            out.append(
                Movement(day, shelf.depot, item, ISSUE, quantity, f"REQ {number}", _cents(value))
            )
        for depot, count_day in counts.items():
            if count_day == day:
                shelf = shelves[depot]
                delta = _round_down(shelf.stock * rng.uniform(0.02, 0.2), item) or 1.0
                if rng.random() < 0.6:
                    delta = -min(delta, shelf.stock)  # counts find shortfalls more often
                if delta:
                    shelf.move(delta)
                    out.append(
                        Movement(
                            day,
                            depot,
                            item,
                            ADJUSTMENT,
                            abs(delta),
                            documents.count(day),
                            None if rng.random() < 0.7 else _cents(shelf.average_cost),
                        )
                    )
        for shelf in shelves.values():
            if shelf is central or not shelf.replenished:
                continue
            position = shelf.stock + shelf.on_order
            if position >= shelf.reorder_point or day.weekday() != shelf.review_weekday:
                continue
            wanted = _round_up(shelf.order_up_to - position, item)
            if central is not None:
                quantity = _round_down(min(wanted, central.stock), item)
                if quantity <= 0:
                    continue
                central.move(-quantity)
                arrive = day + timedelta(days=rng.randint(*TRANSIT_DAYS))
                value = _cents(central.average_cost)
                # Both legs carry one document: out of the warehouse today, into the site on
                # arrival. The depot on each row tells the direction; quantities stay positive.
                document = documents.transfer()
                out.append(Movement(day, central.depot, item, TRANSFER, quantity, document, value))
                arrivals[arrive].append((shelf, TRANSFER, quantity, value, document))
            else:
                quantity = wanted
                arrive = day + timedelta(days=_lead_days(rng, shelf))
                value = _purchase_price(rng, price, inflation, progress)
                arrivals[arrive].append((shelf, RECEIPT, quantity, value, documents.invoice()))
            shelf.on_order += quantity
        if central is not None and central.stock + central.on_order < central.reorder_point:
            wanted = central.order_up_to - central.stock - central.on_order
            quantity = _lot(wanted, item)
            if item.unit == "KG":
                # Steel and cement are weighed on delivery: never quite the tonnage ordered.
                quantity = round(quantity * rng.uniform(0.97, 1.03), 2)
            arrive = day + timedelta(days=_lead_days(rng, central))
            value = _purchase_price(rng, price, inflation, progress)
            arrivals[arrive].append((central, RECEIPT, quantity, value, documents.invoice()))
            central.on_order += quantity
        day += timedelta(days=1)
    return out


class _Documents:
    """Document numbers as the ERP prints them: invoices, transfers, inventory counts.

    Items are simulated one after another, so numbers handed out during the simulation are
    provisional; `renumber` makes them grow with the date, as a real register's do.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._invoices = 0
        self._transfers = 0

    def invoice(self) -> str:
        self._invoices += 1
        return f"NF ~{self._invoices:09d}"

    def transfer(self) -> str:
        self._transfers += 1
        return f"TRF ~{self._transfers:06d}"

    def count(self, day: date) -> str:
        return f"INV {day:%Y/%m}"

    def renumber(self, movements: list[Movement]) -> list[Movement]:
        invoice = self._rng.randint(20_000, 90_000)
        transfer = self._rng.randint(1_000, 5_000)
        final: dict[str, str] = {}
        renumbered: list[Movement] = []
        for movement in movements:
            document = movement.document
            if "~" in document and document not in final:
                if document.startswith("NF"):
                    invoice += self._rng.randint(1, 40)  # other suppliers' invoices interleave
                    final[document] = f"NF {invoice:09d}"
                else:
                    transfer += 1
                    final[document] = f"TRF {transfer:06d}"
            renumbered.append(replace(movement, document=final.get(document, document)))
        return renumbered


def _shelf(
    rng: random.Random,
    depot: str,
    item: DemoItem,
    daily: float,
    lead_days: float,
    price: float,
    cover_days: int,
) -> _Shelf:
    # Reorder below what would last the lead time with a safety margin; refill with enough for
    # `cover_days`, and never less than a couple of typical jobs: demand is intermittent and
    # a year's average can be a fraction of one request.
    reorder = _round_up(daily * lead_days * 1.5, item)
    order_up_to = reorder + _round_up(max(daily * cover_days, 2 * item.mean_quantity), item)
    stock = 0.0 if rng.random() < 0.08 else _round_down(rng.uniform(reorder, order_up_to), item)
    return _Shelf(
        depot,
        item,
        reorder,
        order_up_to,
        stock,
        price * rng.uniform(0.9, 1.05),
        lead_days,
        rng.randrange(5),
        replenished=rng.random() > 0.1,
    )


def _base_price(rng: random.Random, item: DemoItem) -> float:
    median = FAMILY_PRICE.get(item.family, 20.0)
    if item.unit in ("MT", "KG"):
        median *= 0.3  # priced per metre or kilo
    return max(0.35, rng.lognormvariate(math.log(median), 0.9))


def _purchase_price(
    rng: random.Random, price: float, inflation: float, progress: float
) -> float | None:
    if rng.random() < 0.08:
        return None  # received before the invoice was keyed in
    drift = 1.0 + (inflation - 1.0) * progress
    return _cents(price * drift * rng.uniform(0.93, 1.08))


def _lead_days(rng: random.Random, shelf: _Shelf) -> int:
    return max(1, round(rng.lognormvariate(math.log(shelf.lead_days), 0.6)))


def _lot(quantity: float, item: DemoItem) -> float:
    size = LOT_SIZE.get(item.unit, 1.0)
    return max(size, math.ceil(quantity / size) * size)


def _round_up(quantity: float, item: DemoItem) -> float:
    if item.unit in FRACTIONAL_UNITS:
        return max(math.ceil(quantity * 100 - 1e-6) / 100, 1.0)
    return float(max(math.ceil(quantity - 1e-9), 1))


def _round_down(quantity: float, item: DemoItem) -> float:
    if item.unit in FRACTIONAL_UNITS:
        return math.floor(max(quantity, 0.0) * 100 + 1e-6) / 100
    return float(math.floor(max(quantity, 0.0) + 1e-9))


def _cents(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def stock_description(item: DemoItem) -> str:
    return " ".join(ACCENTED_WORDS.get(word, word) for word in item.description.split(" "))


def brazilian_number(value: float, decimals: int) -> str:
    """`1234.5` -> `1.234,50`: thousands dot, decimal comma, as the ERP's CSV export writes."""
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "_").replace(".", ",").replace("_", ".")


def movements_csv(movements: list[Movement]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(MOVEMENT_HEADERS)
    for m in movements:
        writer.writerow(
            (
                f"{m.day:%d/%m/%Y}",
                m.depot,
                m.item.code,
                stock_description(m.item),
                m.kind,
                brazilian_number(m.quantity, 2),
                m.item.unit,
                m.document,
                "" if m.unit_value is None else brazilian_number(m.unit_value, 2),
            )
        )
    # The ERP runs on Windows; its export is ANSI (cp1252), not UTF-8.
    return buffer.getvalue().encode("cp1252")


def positions_csv(positions: list[Position], day: date) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(POSITION_HEADERS)
    for p in positions:
        writer.writerow(
            (
                f"{day:%d/%m/%Y}",
                p.depot,
                p.item.code,
                stock_description(p.item),
                brazilian_number(p.balance, 2),
                p.item.unit,
                "" if p.average_cost is None else brazilian_number(p.average_cost, 4),
            )
        )
    # Saved through Excel as "CSV UTF-8", which writes a byte-order mark.
    return buffer.getvalue().encode("utf-8-sig")
