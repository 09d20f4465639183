"""target-fortnox fed by another tap: customers from a CSV file with Swedish column names
(MeltanoLabs tap-csv-folder) end up in the Fortnox sandbox, renamed to the target's input
contract by singer-sdk stream maps — in the tap (`meltano run csv-customers-to-fortnox`) and in
target-fortnox itself. A row that breaks the contract fails alone with the target's per-record
error; the run goes on.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from target_fortnox.target import TargetFortnox

pytestmark = pytest.mark.e2e

TENANT_ID = "1234567"  # the Fortnox sandbox company's DatabaseNumber
CSV_HEADER = "Kundnr,Företag,Orgnr,E-post,Gatuadress,Postnr,Ort,Land"
CSV_ROWS = [
    "8001,Åkessons Bygg AB,556677-8899,info@akessonsbygg.se,Storgatan 1,114 55,Stockholm,SE",
    "8002,Öresunds Konsult HB,,,Hamngatan 4,211 22,Malmö,SE",
    '8003,"Nordlys Rådgivning AS",,post@nordlys.no,Karl Johans gate 2,0154,Oslo,NO',
    # Not an ISO 3166-1 alpha-2 code: breaks the input contract of target-fortnox.
    "8004,Felaktiga Landet AB,559012-3450,kontakt@felaktiga.se,Vägen 9,831 30,Östersund,Sverige",
]
# What each valid row must become in Fortnox.
EXPECTED = {
    "8001": {
        "Name": "Åkessons Bygg AB",
        "OrganisationNumber": "556677-8899",
        "Email": "info@akessonsbygg.se",
        "Address1": "Storgatan 1",
        "ZipCode": "114 55",
        "City": "Stockholm",
        "CountryCode": "SE",
    },
    "8002": {"Name": "Öresunds Konsult HB", "Address1": "Hamngatan 4", "City": "Malmö"},
    "8003": {"Name": "Nordlys Rådgivning AS", "ZipCode": "0154", "CountryCode": "NO"},
}


def test_csv_customers_reach_fortnox_through_meltano(
    pipelines: Any, fortnox_reader: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "kunder"
    folder.mkdir()
    (folder / "kunder-2026.csv").write_text("\n".join([CSV_HEADER, *CSV_ROWS]) + "\n")

    pipelines.run(
        "csv-customers-to-fortnox",
        TAP_CSV_FOLDER_PATH=str(folder),
        TARGET_FORTNOX_MAX_REQUESTS_PER_5S="0",
    )

    fortnox = fortnox_reader
    for number, fields in EXPECTED.items():
        customer = fortnox.get("customers", number)
        assert customer is not None, f"customer {number} is not in Fortnox"
        assert {k: customer[k] for k in fields} == fields
    # Empty CSV cells arrive as empty fields, not as the text "None".
    second = fortnox.get("customers", "8002")
    assert second is not None
    assert not second["OrganisationNumber"]
    assert not second["Email"]
    assert fortnox.get("customers", "8004") is None

    summary = pipelines.last_summary("target-fortnox")["streams"]["customers"]
    assert (summary["created"], summary["failed"]) == (3, 1)
    letters = [
        json.loads(line)
        for line in pipelines.dead_letters_file("target-fortnox").read_text().splitlines()
    ]
    (failed,) = [m for m in letters if m["type"] == "RECORD"]
    assert failed["record"]["customerNumber"] == "8004"
    assert failed["record"]["countryCode"] == "Sverige"
    assert "countryCode" in failed["error"]["message"]


def test_stream_maps_in_target_fortnox_rename_another_taps_stream(
    pipelines: Any, fortnox_reader: Any, tmp_path: Path
) -> None:
    """The same renaming done by target-fortnox's own stream maps, for a tap without them."""
    schema = {
        "type": "object",
        "properties": {column: {"type": ["string", "null"]} for column in CSV_HEADER.split(",")},
    }
    row = (
        "8101,Västkustens Måleri AB,556677-8899,order@vastkustmaleri.se,"
        "Kustvägen 3,412 58,Göteborg,SE"
    )
    record = dict(zip(CSV_HEADER.split(","), row.split(","), strict=True))
    lines = [
        {"type": "SCHEMA", "stream": "kunder", "schema": schema, "key_properties": ["Kundnr"]},
        {"type": "RECORD", "stream": "kunder", "record": record},
    ]
    config = {
        "api_url": f"{pipelines.fortnox.url}/3",
        "token_url": f"{pipelines.fortnox.url}/oauth-v1/token",
        "client_id": "sandbox-client",
        "client_secret": "sandbox-secret",
        "tenant_id": TENANT_ID,
        "token_store_path": str(tmp_path / "fortnox-token.json"),
        "max_requests_per_5s": 0,
        "results_dir": str(tmp_path / "results"),
        "stream_maps": {
            "kunder": {
                "__alias__": "customers",
                "__key_properties__": ["customerNumber"],
                "customerNumber": "Kundnr",
                "name": "Företag",
                "organizationNumber": "Orgnr",
                "email": "record['E-post']",
                "address1": "Gatuadress",
                "postalCode": "Postnr",
                "city": "Ort",
                "countryCode": "Land",
                "__else__": None,
            }
        },
    }
    target = TargetFortnox(config=config)
    target.listen(io.StringIO("".join(json.dumps(line) + "\n" for line in lines)))

    customer = fortnox_reader.get("customers", "8101")
    assert customer is not None
    assert (customer["Name"], customer["City"], customer["ZipCode"], customer["Email"]) == (
        "Västkustens Måleri AB",
        "Göteborg",
        "412 58",
        "order@vastkustmaleri.se",
    )
