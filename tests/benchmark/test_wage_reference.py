"""The wage reference: shipped with its sources, updated from a file, bad files refused whole."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from benchmark.public.models import WageReference

HEADER = "occupation_code,occupation,area,measure,value,currency,survey,survey_date,source_url\n"


def test_the_shipped_rows_each_name_survey_date_and_source(db):
    rows = list(WageReference.objects.filter(occupation_code="15-1151"))
    assert len(rows) == 6
    assert {r.source_url for r in rows} == {"https://blsmon1.bls.gov/oes/2018/may/oes151151.htm"}
    assert WageReference.objects.get(occupation_code="15-1151", measure="hourly median wage").value == Decimal("24.51")
    latest = WageReference.objects.get(occupation_code="15-1232", area="United States")  # SOC 2018 code, May 2022
    assert latest.value == Decimal("61580") and latest.measure == "annual mean wage" and latest.survey_date.year == 2022
    assert latest.source_url.startswith("http://www.bls.gov/opub/ted/2023/")


def test_a_file_updates_the_table_and_a_bad_file_changes_nothing(db, tmp_path):
    good = tmp_path / "wages.csv"
    good.write_text(HEADER + '15-1232,Computer User Support Specialists,Ohio,hourly median wage,27.10,USD,"OEWS, May 2030",'
                             "2030-05-01,https://example.org/oews/ohio\n")
    call_command("load_wage_reference", str(good))
    assert WageReference.objects.get(area="Ohio").value == Decimal("27.10")
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "15-1232,Support,Texas,hourly median wage,26.00,USD,OEWS,2030-05-01,\n"
                            "15-1232,Support,Utah,hourly median wage,-3,USD,OEWS,2030-05-01,https://example.org/utah\n")
    with pytest.raises(CommandError, match="line 2: source_url.*line 3: value"):
        call_command("load_wage_reference", str(bad), "--replace")
    assert WageReference.objects.filter(area="Ohio").exists() and not WageReference.objects.filter(area__in=["Texas", "Utah"]).exists()
    call_command("load_wage_reference", str(good), "--replace")
    assert list(WageReference.objects.values_list("area", flat=True)) == ["Ohio"]
