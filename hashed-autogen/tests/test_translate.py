"""The pure translations, on plain AutoGen and pydantic objects."""

from __future__ import annotations

import pytest
from autogen_core.tools import FunctionTool, ImageResultContent, TextResultContent, ToolResult
from pydantic import Field, create_model

from hashed_autogen._translate import error_result, fields, read_tool_result, with_defaults


def test_fields_are_what_a_function_tool_passes_its_function():
    def run_query(sql: str, database: str = "prod", limit: int = 10) -> str:
        return sql

    tool = FunctionTool(run_query, description="Run SQL.")
    model = tool.args_type().model_validate({"sql": "select 1", "limit": "5"})
    assert fields(model) == {"sql": "select 1", "database": "prod", "limit": 5}  # coerced and defaulted


def test_fields_include_values_made_by_a_default_factory():
    Args = create_model("Args", tags=(list[str], Field(default_factory=lambda: ["a"])))
    assert fields(Args.model_validate({})) == {"tags": ["a"]}


@pytest.mark.parametrize(
    ("schema", "arguments", "expected"),
    [
        (None, {"a": 1}, {"a": 1}),
        ({"name": "t"}, None, {}),
        ({"name": "t", "parameters": {"type": "object", "properties": {"a": {"default": 2}}}}, {}, {"a": 2}),
        (
            {"name": "t", "parameters": {"type": "object", "properties": {"a": {"default": 2}}}},
            {"a": None},
            {"a": None},
        ),
        ({"name": "t", "parameters": {"type": "object", "properties": {"a": {"type": "int"}}}}, {}, {}),
    ],
)
def test_with_defaults_fills_in_only_what_was_left_out(schema, arguments, expected):
    assert with_defaults(schema, arguments) == expected


def test_with_defaults_refuses_arguments_that_are_not_an_object():
    with pytest.raises(ValueError, match="dictionary update sequence"):
        with_defaults(None, "/etc/passwd")  # type: ignore[arg-type]


def test_read_tool_result_reads_errors_and_text():
    ok = ToolResult(name="t", result=[TextResultContent(content="a"), TextResultContent(content="b")])
    assert read_tool_result(ok, 7).result == "a\nb"
    assert read_tool_result(ok, 7).duration_ns == 7
    failed = read_tool_result(error_result("t", "no such table"), 3)
    assert isinstance(failed.error, RuntimeError) and str(failed.error) == "no such table"
    assert read_tool_result("raw", 1).result == "raw"


def test_an_image_result_is_recorded_by_its_text():
    from autogen_core import Image
    from PIL import Image as PILImage

    picture = ToolResult(name="t", result=[ImageResultContent(content=Image(PILImage.new("RGB", (1, 1))))])
    assert read_tool_result(picture, 1).result.startswith(
        "[Image: iVBOR"
    )  # as the model sees it; only its digest is kept
