"""``sandbox fortnox|moment``: run a local stand-in for Fortnox or Moment."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

from sandbox.server import serve


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sandbox",
        description="Local Fortnox and Moment API servers, faithful to the real APIs.",
    )
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="{fortnox,moment}")

    def common(sub: argparse.ArgumentParser, port: int) -> None:
        sub.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
        sub.add_argument("--port", type=int, default=port, help=f"port ({port}; 0 = any free port)")
        sub.add_argument(
            "--db", required=True, help="SQLite file; data and tokens survive restarts"
        )
        sub.add_argument(
            "--seed",
            type=int,
            default=None,
            metavar="N",
            help="fill a new (empty) database with deterministic demo data: same N, same data",
        )

    fortnox = kinds.add_parser("fortnox", help="the Fortnox API v3 and its OAuth2 server")
    common(fortnox, 8081)
    fortnox.add_argument(
        "--max-requests-per-5s",
        type=int,
        default=25,
        help="sliding-window limit per client and tenant, as Fortnox (25; 0 = off)",
    )
    fortnox.add_argument(
        "--token-lifetime",
        type=int,
        default=3600,
        help="access-token lifetime in seconds (3600, as Fortnox)",
    )
    fortnox.add_argument(
        "--supplier-invoice-date-filter",
        choices=("on", "off"),
        default=None,
        help="whether supplier-invoice lists apply fromdate/todate (off by default: Fortnox "
        "documents them only for invoices, orders, offers and vouchers)",
    )
    fortnox.add_argument(
        "--tenant-ids",
        default="",
        metavar="ID,ID,...",
        help="serve several companies from this one host, each with its own TenantId, database "
        "(--db for the first, <db>-<TenantId>.db for the others), tokens and rate-limit window "
        "(default: one company, TenantId 1234567; sandbox/fortnox/tenants.py)",
    )
    moment = kinds.add_parser("moment", help="the Moment public API 1.0")
    common(moment, 8082)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the sandbox named on the command line (fortnox or moment) until stopped."""
    args = _parser().parse_args(argv)
    app: WSGIApplication
    if args.kind == "fortnox":
        from sandbox.fortnox.app import create_app as create_fortnox
        from sandbox.fortnox.tenants import create_multi_tenant_app

        options = {
            "max_requests_per_5s": args.max_requests_per_5s,
            "token_lifetime": args.token_lifetime,
            "supplier_invoice_date_filter": None
            if args.supplier_invoice_date_filter is None
            else args.supplier_invoice_date_filter == "on",
        }
        tenant_ids = [int(t) for t in args.tenant_ids.replace(" ", "").split(",") if t]
        if len(tenant_ids) > 1:
            app = create_multi_tenant_app(args.db, tenant_ids, seed=args.seed, **options)
        else:
            app = create_fortnox(
                args.db, seed=args.seed, tenant_id=tenant_ids[0] if tenant_ids else None, **options
            )
    else:
        from sandbox.moment.app import create_app as create_moment

        app = create_moment(args.db, seed=args.seed)
    serve(app, args.host, args.port, args.kind)
    return 0
