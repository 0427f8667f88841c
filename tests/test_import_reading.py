"""Reading files as libraries export them: encodings, delimiters, quoted newlines, value formats."""

import codecs
from datetime import date

import pytest

from crmcore import validation
from crmcore.imports import reading, values

ROWS = [["cardnumber", "surname", "note"], ["1", "Müller", "a"], ["2", "Gómez; Jr", "b"]]


def write(tmp_path, text: str, encoding: str, name="f.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if encoding != "utf-8-sig" else codecs.BOM_UTF8 + text.encode("utf-8"))
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "latin-1"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_encoding_and_delimiter_are_sniffed(tmp_path, encoding, delimiter):
    text = "\r\n".join(delimiter.join(f'"{c}"' if delimiter in c else c for c in row) for row in ROWS) + "\r\n"
    path = write(tmp_path, text, encoding)
    fmt = reading.sniff(path)
    assert fmt.delimiter == delimiter
    assert fmt.header == ["cardnumber", "surname", "note"]  # no BOM glued to the first name
    assert [r for _l, r in reading.rows(path, fmt)] == ROWS[1:]


def test_line_numbers_are_physical_lines_even_after_quoted_newlines(tmp_path):
    text = 'id,address,x\n1,"12 Elm St\nApt 4\nrear",a\n\n2,plain,b\n3,"two\r\nlines",c\n4,last,d\n'
    path = write(tmp_path, text, "utf-8")
    lines = [(line, r[0]) for line, r in reading.rows(path, reading.sniff(path))]
    assert lines == [(2, "1"), (6, "2"), (7, "3"), (9, "4")]


def test_empty_file_and_headerless_file_are_refused(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        reading.sniff(write(tmp_path, "", "utf-8"))


def test_size_limit_refuses_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_MAX_UPLOAD_MB", "0.001")
    path = write(tmp_path, "a,b\n" + "1,2\n" * 1000, "utf-8", name="big.csv")
    with pytest.raises(ValueError, match=r"big.csv is .* MB, over the import limit"):
        reading.check_size(path)


@pytest.mark.parametrize("text", ["", "None", "NULL", "null", "N/A", "n/a"])
def test_missing_markers(text):
    assert values.is_missing(text)


@pytest.mark.parametrize("text,expected", [("true", True), ("TRUE", True), ("yes", True), ("Y", True), ("1", True), ("false", False), ("No", False), ("n", False), ("0", False)])
def test_booleans(text, expected):
    assert values.parse_bool(text) is expected


def test_bad_boolean_says_what_is_accepted():
    with pytest.raises(ValueError, match="yes/no"):
        values.parse_bool("maybe")


@pytest.mark.parametrize(
    "text,order,expected",
    [
        ("2024-03-31", "iso", date(2024, 3, 31)),
        ("2024-03-31 10:15:00", "dmy", date(2024, 3, 31)),
        ("31/03/2024", "dmy", date(2024, 3, 31)),
        ("03/31/2024", "mdy", date(2024, 3, 31)),
        ("4.5.2024", "dmy", date(2024, 5, 4)),
        ("4.5.2024", "mdy", date(2024, 4, 5)),
        ("1987", "iso", date(1987, 1, 1)),
        ("2024/03/31", "mdy", date(2024, 3, 31)),
    ],
)
def test_dates_in_the_chosen_order(text, order, expected):
    assert values.parse_date(text, order) == expected


@pytest.mark.parametrize("text,order", [("31/03/2024", "mdy"), ("31/03/2024", "iso"), ("2024-02-30", "iso"), ("soon", "dmy")])
def test_bad_dates_are_refused(text, order):
    with pytest.raises(ValueError):
        values.parse_date(text, order)


def test_year_and_month_columns():
    assert values.year_month("2023", "7") == date(2023, 7, 1)
    assert values.year_month("2023", "Sep") == date(2023, 9, 1)
    assert values.year_month("2023", None) == date(2023, 1, 1)
    with pytest.raises(ValueError):
        values.year_month("2023", "13")


@pytest.mark.parametrize(
    "address",
    ["Ana.Lopez@Example.ORG", "a+tag@mail.example.com", "o'brien@example.co.uk", "x@library.test", "bad@@example.org", "no-at.example.org",
     "a..b@example.org", "a@-example.org", "user@localhost", "ünï@example.org", "a@b.c", "name@example.123"],
)
def test_fast_email_check_agrees_with_crmcore_validation(address):
    try:
        expected = validation.email(address)
    except ValueError:
        expected = None
    try:
        got = values.parse_email(address)
    except ValueError:
        got = None
    assert got == expected


ZONES = {"columns": {"code": "zip", "name": "name", "population": "population"}}


def zones_file(tmp_path, rows: list[str], name="zones.csv"):
    path = tmp_path / name
    path.write_bytes(("zip,name,population,notes\n" + "".join(rows)).encode("utf-8"))
    return path


@pytest.mark.parametrize("quoted", [False, True], ids=["plain", "quoted-with-newlines"])
def test_a_12_mb_value_rejects_its_row_and_the_rest_imports(db, staff, tmp_path, quoted):
    from crmcore import imports
    from crmcore.models import Zone
    from sqlmodel import select

    huge = ("x" * 1000 + "\n") * 12_000 if quoted else "x" * 12_000_000
    rows = [f"6270{i},Zone {i},{100 + i},\n" for i in range(5)]
    rows.insert(5, f'62799,Big,1,"{huge}"\n' if quoted else f"62799,Big,1,{huge}\n")  # line 7
    rows.append("62790,After,50,ok\n")
    path = zones_file(tmp_path, rows)
    summary = imports.run_import(db, actor=staff["admin"], kind="zones", path=path, mapping=ZONES)
    assert summary.new == 6
    assert [(r.line, r.field) for r in summary.rejected] == [(7, "notes")]
    assert summary.rejected[0].reason == f"a value is longer than {reading.MAX_FIELD_CHARS:,} characters (the limit); the row was rejected"
    with db.read() as s:
        codes = sorted(z.code for z in s.exec(select(Zone)))
    assert codes == ["62700", "62701", "62702", "62703", "62704", "62790"]  # the row after the long one is read whole


def test_a_value_just_under_the_limit_is_read(tmp_path):
    path = zones_file(tmp_path, [f"1,a,2,{'y' * reading.MAX_FIELD_CHARS}\n", "2,b,3,z\n"])
    stream = reading.RowStream(path, reading.sniff(path))
    assert [(line, len(r[3])) for line, r in stream] == [(2, reading.MAX_FIELD_CHARS), (3, 1)]
    assert stream.take_too_long() == {}


def utf8_then_latin1(tmp_path, *, first_part_ascii: bool):
    """A file that is UTF-8 (or plain ASCII) for its first 64 KB and Latin-1 after."""
    head = "cardnumber,surname\n".encode()
    name = "Smith" if first_part_ascii else "Müller"
    line = 2
    body = b""
    while len(head + body) < reading.SNIFF_BYTES + 100:
        body += f"{line},{name}\n".encode("utf-8")
        line += 1
    tail = f"{line},Gómez\n".encode("latin-1")
    path = tmp_path / "mixed.csv"
    path.write_bytes(head + body + tail)
    return path, line


def test_utf8_then_latin1_is_refused_with_the_line_where_utf8_stops(tmp_path):
    path, line = utf8_then_latin1(tmp_path, first_part_ascii=False)
    with pytest.raises(ValueError) as info:
        reading.sniff(path)
    assert f"mixed.csv, line {line}: the file is UTF-8 up to here but not from here on" in str(info.value)
    assert "mixes two encodings" in str(info.value)


def test_ascii_then_latin1_is_read_as_latin1_throughout(tmp_path):
    path, line = utf8_then_latin1(tmp_path, first_part_ascii=True)
    fmt = reading.sniff(path)
    assert fmt.encoding == "cp1252"
    last = list(reading.rows(path, fmt))[-1]
    assert last == (line, [str(line), "Gómez"])  # not "G\ufffdmez"


def test_a_utf8_character_cut_by_a_block_boundary_is_still_utf8(tmp_path, monkeypatch):
    monkeypatch.setattr(reading, "_BLOCK", 7)  # "Müller" straddles blocks
    path = tmp_path / "u.csv"
    path.write_bytes("id,surname\n1,Müller\n2,Gómez\n".encode())
    assert reading.file_encoding(path) == "utf-8"
    bad = tmp_path / "b.csv"
    bad.write_bytes("id,surname\n1,Müller\n".encode() + "2,Gómez\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"b.csv, line 3: "):
        reading.file_encoding(bad)


def test_a_header_with_a_huge_column_name_is_refused(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("id," + "n" * 5000 + "\n1,2\n")
    with pytest.raises(ValueError, match="line 1 must name the columns"):
        reading.sniff(path)


FIXTURES = __import__("pathlib").Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("data,looks", [
    ((FIXTURES / "photo.png").read_bytes(), "it looks like a PNG image"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(200), "it looks like a JPEG image"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "it looks like a PDF document"),
    (b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml", "an Excel .xlsx workbook is"),
    (b"cardnumber,surname\n1,Lee\x00\x00\x00\n", "it looks like binary data"),
])
def test_a_binary_file_renamed_csv_is_refused_by_its_uploaded_name(tmp_path, data, looks):
    stored = tmp_path / "3f2a9c0d1e4b5a6978c1d2e3f4a5b6c7.csv"  # an upload is stored under its hash
    stored.write_bytes(data)
    with pytest.raises(ValueError) as refused:
        reading.sniff(stored, name="photo.csv")
    message = str(refused.value)
    assert message.startswith("photo.csv is not a text file (") and looks in message and message.endswith("export the data as CSV and upload that.")
    assert stored.stem not in message


def test_an_empty_or_utf16_upload_is_named_as_uploaded(tmp_path):
    stored = tmp_path / "e3b0c44298fc1c149afbf4c8996fb924.csv"
    for data in (b"", b"  \r\n\n"):
        stored.write_bytes(data)
        with pytest.raises(ValueError, match=r"^borrowers\.csv is empty: the first line must name the columns\.$"):
            reading.sniff(stored, name="borrowers.csv")
    stored.write_bytes(codecs.BOM_UTF16_LE + "cardnumber,surname\n1,Lee\n".encode("utf-16-le"))
    with pytest.raises(ValueError, match=r"^borrowers\.csv is saved as UTF-16 .* save it again as CSV UTF-8\.$"):
        reading.sniff(stored, name="borrowers.csv")


def test_latin1_text_with_accents_is_still_text(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes("cardnumber,surname\n1,Müller\n2,Ibáñez\n".encode("latin-1"))
    fmt = reading.sniff(path, name="x.csv")
    assert fmt.header == ["cardnumber", "surname"] and fmt.encoding in ("cp1252", "latin-1")
