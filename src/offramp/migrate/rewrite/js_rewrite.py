"""Rewriting JavaScript/TypeScript by edits at tree-sitter ranges: only the bytes of a node
that must change are replaced, so everything else (comments, formatting) stays.

- a hard-coded endpoint becomes ``process.env.OPENAI_BASE_URL ?? "<offramp>"`` (or
  ``ANTHROPIC_BASE_URL``; ``Deno.env.get(...)`` in Deno code), a raw API URL a template
  string on that endpoint with its path;
- ``new AzureOpenAI({...})`` becomes ``new OpenAI({ baseURL, apiKey, ... })``.
The v3 SDK, Bedrock/Vertex clients and ``@azure/openai`` are left for people, with a note.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from offramp.migrate.rewrite.endpoints import Endpoint, for_client, for_url
from offramp.migrate.rewrite.plan import Note, NoteKind
from offramp.migrate.scan.js_source import parser_for
from offramp.migrate.scan.js_tree import descendants, pairs, string_value, text
from offramp.migrate.scan.sites import Sdk, Site


@dataclass(frozen=True)
class _Cloud:
    """A cloud client class, the plain class it becomes, and the options only it takes."""

    plain: str
    vendor: Sdk
    package: str | None  # the plain class's package when it is another one
    only: frozenset[str]
    endpoint_keys: frozenset[str] = frozenset({"endpoint", "baseURL"})
    base_option: str = "baseURL: {}"  # how the plain class takes its endpoint
    renamed: tuple[tuple[str, str], ...] = ()  # options the plain class takes by another name


_LANGCHAIN_AZURE = frozenset(
    {
        "azureOpenAIApiInstanceName",
        "azureOpenAIApiVersion",
        "azureOpenAIEndpoint",
        "azureOpenAIBasePath",
        "azureADTokenProvider",
        "azureOpenAIApiDeploymentName",
        "azureOpenAIApiEmbeddingsDeploymentName",
        "deploymentName",
        "azureOpenAIApiKey",
    }
)
_LANGCHAIN_RENAMED = (
    ("azureOpenAIApiKey", "apiKey"),
    ("azureOpenAIApiDeploymentName", "model"),
    ("azureOpenAIApiEmbeddingsDeploymentName", "model"),
    ("deploymentName", "model"),
)


_CLOUD: dict[str, _Cloud] = {
    "AzureOpenAI": _Cloud(
        "OpenAI",
        "openai",
        None,
        frozenset({"apiVersion", "deployment", "azureADTokenProvider", "endpoint", "baseURL"}),
    ),
    "AnthropicBedrock": _Cloud(
        "Anthropic",
        "anthropic",
        "@anthropic-ai/sdk",
        frozenset(
            {
                "awsRegion",
                "awsAccessKey",
                "awsSecretKey",
                "awsSessionToken",
                "awsProfile",
                "baseURL",
            }
        ),
    ),
    "AnthropicVertex": _Cloud(
        "Anthropic",
        "anthropic",
        "@anthropic-ai/sdk",
        frozenset({"region", "projectId", "googleAuth", "accessToken", "baseURL"}),
    ),
    "AzureChatOpenAI": _Cloud(
        "ChatOpenAI",
        "openai",
        None,
        _LANGCHAIN_AZURE,
        frozenset({"azureOpenAIEndpoint", "azureOpenAIBasePath"}),
        "configuration: {{ baseURL: {} }}",
        _LANGCHAIN_RENAMED,
    ),
    "AzureOpenAIEmbeddings": _Cloud(
        "OpenAIEmbeddings",
        "openai",
        None,
        _LANGCHAIN_AZURE,
        frozenset({"azureOpenAIEndpoint", "azureOpenAIBasePath"}),
        "configuration: {{ baseURL: {} }}",
        _LANGCHAIN_RENAMED,
    ),
}
_BARE_PARENTS = frozenset(
    {"pair", "variable_declarator", "arguments", "assignment_expression", "return_statement"}
)


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    text: str


def rewrite_script(rel: str, source: str, sites: Sequence[Site]) -> tuple[str, list[Note]]:
    """The rewritten source and notes; the source unchanged when nothing applies."""
    raw = source.encode("utf-8")
    tree = parser_for(rel).parse(raw)
    deno = "Deno." in source or any(
        spec in source for spec in ('from "npm:', "from 'npm:", 'from "jsr:', 'from "https://')
    )
    at: dict[tuple[int, int], list[Any]] = {}
    for node in descendants(tree.root_node, ("string", "template_string", "new_expression")):
        row, col = node.start_point
        at.setdefault((row + 1, col + 1), []).append(node)
    edits: list[_Edit] = []
    notes: list[Note] = []
    renamed: set[str] = set()
    for site in sites:
        if site.needs_change:
            made, note = _site_edits(site, at.get((site.line, site.column), []), deno, renamed)
            edits += made
            if note is not None:
                notes.append(Note(rel, site.line, *note))
    bound = {text(n) for n in descendants(tree.root_node, ("identifier", "type_identifier"))}
    for name in sorted(renamed):
        edits += _rename_class(tree.root_node, name, _CLOUD[name], bound)
        bound.add(_CLOUD[name].plain)  # imported now: a second cloud class reuses it
    return _applied(raw, edits).decode("utf-8"), notes


def _site_edits(
    site: Site, nodes: list[Any], deno: bool, renamed: set[str]
) -> tuple[list[_Edit], tuple[NoteKind, str] | None]:
    """The edits for one site that needs a change, and the note to make about it."""
    string = next((n for n in nodes if n.type in ("string", "template_string")), None)
    new = next((n for n in nodes if n.type == "new_expression"), None)
    if site.kind == "endpoint" and string is not None and site.sdk != "azure-openai":
        expr = _env(for_client(site.sdk), deno)
        bare = string.parent is not None and string.parent.type in _BARE_PARENTS
        return [_Edit(string.start_byte, string.end_byte, expr if bare else f"({expr})")], None
    if site.kind == "raw-http" and string is not None and for_url(site.detail):
        return _url_edit(string, deno), None
    name = _cloud_class(new) if site.kind in ("client", "wrapper") and new is not None else None
    if name is None:
        return [], ("by-hand", f"{site.kind}: {site.change}")
    cloud = _CLOUD[name]
    renamed.add(name)
    var = "OPENAI_BASE_URL" if cloud.vendor == "openai" else "ANTHROPIC_BASE_URL"
    return _cloud_client(new, name, cloud, deno), (
        "changed",
        f"now {cloud.plain} client on {var}; offramp must serve the deployment "
        "or model names this code asks for (add aliases for them)",
    )


def _env(endpoint: Endpoint, deno: bool) -> str:
    read = f'Deno.env.get("{endpoint.var}")' if deno else f"process.env.{endpoint.var}"
    expr = f'{read} ?? "{endpoint.default}"'
    return f'({expr}).replace(/\\/v1$/, "")' if endpoint.strip_v1 else expr


def _url_edit(node: Any, deno: bool) -> list[_Edit]:
    if node.type == "string":
        endpoint = for_url(string_value(node) or "")
        if endpoint is None:
            return []
        rest = endpoint.rest.replace("`", "\\`").replace("${", "\\${")
        return [_Edit(node.start_byte, node.end_byte, f"`${{{_env(endpoint, deno)}}}{rest}`")]
    head = next((c for c in node.children if c.type == "string_fragment"), None)
    if head is None or head.start_byte != node.start_byte + 1:
        return []
    endpoint = for_url(text(head))
    if endpoint is None:
        return []
    return [_Edit(head.start_byte, head.end_byte, f"${{{_env(endpoint, deno)}}}{endpoint.rest}")]


def _cloud_class(new: Any) -> str | None:
    ctor = new.child_by_field_name("constructor")
    name = text(ctor).split(".")[-1] if ctor is not None else ""
    return name if name in _CLOUD else None


def _cloud_client(new: Any, name: str, cloud: _Cloud, deno: bool) -> list[_Edit]:
    ctor = new.child_by_field_name("constructor")
    edits = [_Edit(ctor.end_byte - len(name), ctor.end_byte, cloud.plain)]
    base = cloud.base_option.format(_env(for_client(cloud.vendor), deno))
    key_var = "OPENAI_API_KEY" if cloud.vendor == "openai" else "ANTHROPIC_API_KEY"
    read_key = f'Deno.env.get("{key_var}")' if deno else f"process.env.{key_var}"
    key = f'apiKey: {read_key} ?? "unused"'
    args = new.child_by_field_name("arguments")
    options = next((c for c in args.named_children if c.type == "object"), None) if args else None
    if options is None:
        if args is not None:
            edits.append(_Edit(args.start_byte, args.end_byte, f"({{ {base}, {key} }})"))
        return edits
    renames = _renames(cloud, {k for k, _ in pairs(options)})
    keys = {renames.get(k, k) for k, _ in pairs(options)}
    additions = ", ".join([base] if "apiKey" in keys else [base, key])
    comments = any(c.type == "comment" for c in options.children)
    if not keys - cloud.only and not keys & cloud.endpoint_keys and not renames and not comments:
        kept_key = next((n for k, n in pairs(options) if k == "apiKey" and n is not None), None)
        fresh = f"{base}, apiKey: {text(kept_key)}" if kept_key is not None else additions
        return [*edits, _Edit(options.start_byte, options.end_byte, f"{{ {fresh} }}")]
    placed = False
    for pair in options.named_children:
        key_node = pair.child_by_field_name("key") if pair.type == "pair" else None
        if key_node is None:
            continue
        key_name = string_value(key_node) or text(key_node)
        if key_name in cloud.endpoint_keys and not placed:
            edits.append(_Edit(pair.start_byte, pair.end_byte, additions))
            placed = True
        elif key_name in renames:
            edits.append(_Edit(key_node.start_byte, key_node.end_byte, renames[key_name]))
        elif key_name in cloud.only:
            edits.append(_deletion(pair))
    if not placed:
        opening = options.children[0]
        edits.append(_Edit(opening.end_byte, opening.end_byte, f" {additions},"))
    return edits


def _renames(cloud: _Cloud, keys: set[str]) -> dict[str, str]:
    """Options to rename: each to a name the options do not already have, once."""
    out: dict[str, str] = {}
    for old, new in cloud.renamed:
        if old in keys and new not in keys and new not in out.values():
            out[old] = new
    return out


def _deletion(pair: Any) -> _Edit:
    """A pair, its comma and, when they stand alone on their line, the whole line."""
    start, end = pair.start_byte, pair.end_byte
    root = pair
    while root.parent is not None:
        root = root.parent
    raw: bytes = root.text
    after, before = pair.next_sibling, pair.prev_sibling
    if after is not None and after.type == ",":
        end = after.end_byte
        while raw[end : end + 1] == b" ":
            end += 1
    elif before is not None and before.type == ",":
        start = before.start_byte  # the last one: the comma before it goes with it
    line_start = raw.rfind(b"\n", 0, start) + 1
    line_end = raw.find(b"\n", end)
    if (
        raw[line_start:start].strip() == b""
        and raw[end : line_end if line_end >= 0 else None].strip() == b""
    ):
        return _Edit(line_start, line_end + 1 if line_end >= 0 else len(raw), "")
    return _Edit(start, end, "")


def _specifier_deletion(spec: Any) -> _Edit:
    """``{ AzureOpenAI }`` goes; when it was the only name, with its braces and comma."""
    named = spec.parent
    if named is None or len([c for c in named.named_children if c.type == "import_specifier"]) > 1:
        return _deletion(spec)
    before = named.prev_sibling
    start = before.start_byte if before is not None and before.type == "," else named.start_byte
    return _Edit(start, named.end_byte, "")


def _rename_class(root: Any, name: str, cloud: _Cloud, names: set[str]) -> list[_Edit]:
    """The import of the cloud class becomes one of the plain class (from its own package
    when that is another one); other mentions of the class are renamed. ``names`` are the
    names bound in the file."""
    edits = []
    for spec in descendants(root, ("import_specifier",)):
        spec_name = spec.child_by_field_name("name")
        if spec_name is None or text(spec_name) != name:
            continue
        statement = _enclosing(spec, "import_statement")
        if cloud.package is not None and statement is not None:
            edits.append(_package_swap(statement, spec, cloud, cloud.plain in names))
        elif spec.child_by_field_name("alias") is None and cloud.plain in names:
            edits.append(_specifier_deletion(spec))
        else:
            edits.append(_Edit(spec_name.start_byte, spec_name.end_byte, cloud.plain))
    for ident in descendants(root, ("identifier", "type_identifier")):
        parent = ident.parent
        if text(ident) != name or parent is None or parent.type == "import_specifier":
            continue
        if parent.type == "new_expression":
            continue  # the constructor is renamed with its options
        edits.append(_Edit(ident.start_byte, ident.end_byte, cloud.plain))
    return edits


def _package_swap(statement: Any, spec: Any, cloud: _Cloud, bound: bool) -> _Edit:
    """``import { AnthropicBedrock } from "@anthropic-ai/bedrock-sdk"`` ->
    ``import Anthropic from "@anthropic-ai/sdk"`` (or nothing, when already imported)."""
    others = [s for s in descendants(statement, ("import_specifier",)) if s.id != spec.id]
    source = statement.child_by_field_name("source")
    old = string_value(source) or ""
    prefix = "npm:" if old.startswith("npm:") else ""
    quote = text(source)[0] if source is not None else '"'
    if others:  # other names stay with the cloud package; the plain class comes on its own
        return (
            _specifier_deletion(spec)
            if bound
            else _Edit(
                statement.end_byte,
                statement.end_byte,
                f"\nimport {cloud.plain} from {quote}{prefix}{cloud.package}{quote};",
            )
        )
    if bound:
        return _deletion_of_statement(statement)
    return _Edit(
        statement.start_byte,
        statement.end_byte,
        f"import {cloud.plain} from {quote}{prefix}{cloud.package}{quote};",
    )


def _deletion_of_statement(statement: Any) -> _Edit:
    root = statement
    while root.parent is not None:
        root = root.parent
    raw: bytes = root.text
    end = statement.end_byte
    while raw[end : end + 1] in (b" ", b"\t"):
        end += 1  # a comment after it stays, at the start of the line
    if raw[end : end + 1] == b"\n":
        end += 1
    return _Edit(statement.start_byte, end, "")


def _enclosing(node: Any, kind: str) -> Any:
    while node is not None and node.type != kind:
        node = node.parent
    return node


def _applied(raw: bytes, edits: list[_Edit]) -> bytes:
    kept: list[_Edit] = []
    for edit in sorted(edits, key=lambda e: (e.start, -e.end)):
        if kept and edit.start < kept[-1].end and edit.start != edit.end:
            last = kept[-1]
            if not edit.text and not last.text:  # two deletions that meet: one
                kept[-1] = _Edit(last.start, max(last.end, edit.end), "")
            continue  # else inside an edit already made (an endpoint in rewritten options)
        kept.append(edit)
    out = raw
    for edit in reversed(kept):
        out = out[: edit.start] + edit.text.encode("utf-8") + out[edit.end :]
    return out
