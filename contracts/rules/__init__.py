"""Pure routing and rating rules: which contract takes a time entry, and at what price.

Plain Python and ``Decimal`` only — no ORM, no database — so every rule can be tested
exhaustively with hypothesis and re-run on request ("recalculate unbilled").
Selectors load contracts, rate lines and balances into the small frozen dataclasses
these modules take; services store the results (and their explanations).

* :mod:`.rounding`  — billed minutes from raw minutes (increment, direction, minimum)
* :mod:`.rates`     — rate resolution, most specific first, effective-dated
* :mod:`.proration` — contract periods and proration by day
* :mod:`.routing`   — which contract takes an entry, with the reasons why
* :mod:`.blocks`    — Block Hours / Block Money deduction and Retainer caps

Money is rounded only in :mod:`msp_billing.money`.
"""
