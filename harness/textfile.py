"""Reading the user's text files (suites, models, reports, data, anchors, sheets): UTF-8 or a
clear error that names the file, the byte offset and the line of the first undecodable byte."""

from __future__ import annotations

from pathlib import Path

from harness.errors import ConfigError


def read_text(path: Path) -> str:
    """The file's text. Not UTF-8 is a ConfigError with the byte offset, line and column."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(f"{path}: byte {exc.start} (line {line}, column {column}): not UTF-8 text "
                          f"(byte 0x{data[exc.start]:02x}; {exc.reason})",
                          hint=f"save the file as UTF-8, e.g. iconv -f latin1 -t utf-8 {path.name} > fixed.{path.suffix.lstrip('.')}") from None
    return text.removeprefix("\ufeff")  # a BOM is not content


def read_csv_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """(header, [(line, row)]) of a CSV file with a header row. A row with more or fewer values
    than the header is a ConfigError naming its line and column."""
    import csv
    import io

    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    header = list(reader.fieldnames or [])
    rows = []
    for row in reader:
        if None in row:
            raise ConfigError(f"{path}: line {reader.line_num}, column {len(header) + 1}: more values than header columns ({len(header)})")
        missing = [i for i, name in enumerate(header) if row[name] is None]
        if missing:
            i = missing[0]
            raise ConfigError(f"{path}: line {reader.line_num}, column {i + 1} ({header[i]}): missing value "
                              f"(the header has {len(header)} columns, this row {i})",
                              hint="an empty value is written as an empty field between commas")
        rows.append((reader.line_num, row))
    return header, rows
