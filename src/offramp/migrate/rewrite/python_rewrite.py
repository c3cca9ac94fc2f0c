"""Rewriting Python with libcst, so formatting and comments stay as they were.

Only what a scan marked as needing a change is touched, found by its position:
- a hard-coded endpoint becomes ``os.environ.get("OPENAI_BASE_URL", "<offramp>")`` (or
  ``ANTHROPIC_BASE_URL``), a raw API URL becomes that expression plus its path;
- ``AzureOpenAI`` / ``AnthropicBedrock`` / ``AnthropicVertex`` clients become ``OpenAI`` /
  ``Anthropic`` clients on that endpoint (cloud-only arguments dropped);
- pre-1.0 calls (``openai.ChatCompletion.create``) become 1.x calls on the module client,
  with ``.model_dump()`` where the code reads the answer as a dict, and
  ``openai.api_base`` becomes ``openai.base_url``.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst
from libcst.metadata import CodePosition, MetadataWrapper, ParentNodeProvider, PositionProvider

from offramp.migrate.rewrite.endpoints import Endpoint, for_client, for_url
from offramp.migrate.rewrite.plan import Note
from offramp.migrate.rewrite.python_args import (
    TIGHT,
    dotted,
    inserted,
    kwarg,
    slashed,
    string_literal,
    with_commas,
    without,
)
from offramp.migrate.rewrite.python_imports import add_import
from offramp.migrate.rewrite.python_targets import Targets, find_targets
from offramp.migrate.scan.sites import Sdk, Site

_LEGACY: dict[str, str] = {
    "ChatCompletion": "chat.completions.create",
    "Completion": "completions.create",
    "Embedding": "embeddings.create",
    "Moderation": "moderations.create",
    "Image": "images.generate",
}
_RENAMES: dict[str, str] = {
    "AzureOpenAI": "OpenAI",
    "AsyncAzureOpenAI": "AsyncOpenAI",
    "AnthropicBedrock": "Anthropic",
    "AsyncAnthropicBedrock": "AsyncAnthropic",
    "AnthropicVertex": "Anthropic",
    "AsyncAnthropicVertex": "AsyncAnthropic",
}
_CLOUD_ARGS = frozenset(
    {
        "azure_endpoint",
        "azure_deployment",
        "api_version",
        "azure_ad_token",
        "azure_ad_token_provider",
        "aws_region",
        "aws_access_key",
        "aws_secret_key",
        "aws_session_token",
        "aws_profile",
        "region",
        "project_id",
        "access_token",
        "credentials",
        "base_url",
    }
)
# LangChain's Azure classes and the plain ones that take their place.
_WRAPPER_RENAMES: dict[str, str] = {
    "AzureChatOpenAI": "ChatOpenAI",
    "AzureOpenAIEmbeddings": "OpenAIEmbeddings",
    "AzureOpenAI": "OpenAI",
}
# LlamaIndex's Azure classes live in their own packages; the plain ones beside them.
_LLAMA_RENAMES: dict[str, str] = {
    "AzureOpenAI": "OpenAI",
    "AzureOpenAIEmbedding": "OpenAIEmbedding",
}
_AZURE_WRAPPER_ARGS = frozenset(
    {
        "azure_endpoint",
        "azure_deployment",
        "deployment_name",
        "deployment",
        "api_version",
        "openai_api_version",
        "openai_api_type",
        "openai_api_base",
        "azure_ad_token",
        "azure_ad_token_provider",
        "use_azure_ad",
        "engine",
        "api_base",
        "base_url",
    }
)
_DEPLOYMENT_ARGS = frozenset({"azure_deployment", "deployment_name", "deployment", "engine"})
_SPACED = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
_DROPPED_CALL_ARGS = frozenset({"api_key", "api_base", "api_type", "api_version", "organization"})
_REMOVED_SETTINGS = frozenset({"api_type", "api_version"})


def rewrite_python(rel: str, source: str, sites: Sequence[Site]) -> tuple[str, list[Note]]:
    """The rewritten source and notes; the source unchanged when nothing applies."""
    targets = find_targets(source, sites)
    if not (
        targets.endpoints or targets.raw or targets.clients or targets.legacy or targets.wrappers
    ):
        return source, []
    module = cst.parse_module(source)
    wrapper = MetadataWrapper(module)
    transformer = _Rewrite(rel, targets)
    rewritten = wrapper.visit(transformer)
    if transformer.needs_os:
        rewritten = add_import(rewritten, "os")
    if transformer.needs_openai:
        rewritten = add_import(rewritten, "openai")
    return rewritten.code, transformer.notes


def env_code(endpoint: Endpoint, quote: str = '"') -> str:
    """``os.environ.get("VAR", "default")``, stripped of /v1 when the path needs it."""
    code = f"os.environ.get({quote}{endpoint.var}{quote}, {quote}{endpoint.default}{quote})"
    return f"{code}.removesuffix({quote}/v1{quote})" if endpoint.strip_v1 else code


class _Rewrite(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider, ParentNodeProvider)

    def __init__(self, rel: str, targets: Targets):
        super().__init__()
        self.rel = rel
        self.t = targets
        self.notes: list[Note] = []
        self.needs_os = False
        self.needs_openai = False
        self.modules: set[str] = set()  # local names of `import openai`
        self.renames: dict[str, str] = {}  # locals bound to a class that is renamed
        self.origins: dict[str, str] = {}  # local class name -> module it is imported from
        self.imported: set[tuple[str, str]] = set()  # (module, name) the file imports

    def _at(self, node: cst.CSTNode) -> tuple[int, int]:
        start: CodePosition = self.get_metadata(PositionProvider, node).start
        return start.line, start.column

    def _note(self, node: cst.CSTNode, kind: str, text: str) -> None:
        line = self._at(node)[0]
        self.notes.append(Note(self.rel, line, kind, text))  # type: ignore[arg-type]

    # ----- imports --------------------------------------------------------------------

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            if isinstance(alias.name, cst.Name) and alias.name.value == "openai":
                self.modules.add(alias.evaluated_alias or "openai")

    def leave_ImportFrom(
        self, original: cst.ImportFrom, updated: cst.ImportFrom
    ) -> cst.ImportFrom | cst.RemovalSentinel:
        module = dotted(original.module) if original.module is not None else ""
        llama = module.startswith("llama_index.") and "azure_openai" in module
        if llama and self.t.wrappers:
            return self._llama_import(updated, module)
        if module in ("openai", "anthropic"):
            renames = _RENAMES if self.t.clients else {}
        elif module.startswith("langchain") and self.t.wrappers:
            renames = _WRAPPER_RENAMES
        else:
            return updated
        if isinstance(updated.names, cst.ImportStar):
            return updated
        kept: list[cst.ImportAlias] = []
        seen: set[str] = set()
        for alias in updated.names:
            name = alias.name.value if isinstance(alias.name, cst.Name) else ""
            if name in _LEGACY and self.t.legacy:
                continue  # gone in 1.x; calls now go through the module client
            if name in renames:
                if alias.asname is None:
                    self.renames[name] = renames[name]
                name = renames[name]
                alias = alias.with_changes(name=cst.Name(name))
            key = f"{name} as {alias.evaluated_alias}" if alias.asname else name
            if key not in seen:
                seen.add(key)
                kept.append(alias.with_changes(comma=cst.MaybeSentinel.DEFAULT))
        if not kept:
            return cst.RemovalSentinel.REMOVE
        return updated.with_changes(names=kept)

    def visit_Module(self, node: cst.Module) -> None:
        # every top-level import is known before any is rewritten
        for stmt in node.body:
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    if isinstance(small, cst.ImportFrom):
                        self.visit_ImportFrom(small)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        module = dotted(node.module) if node.module is not None else ""
        if isinstance(node.names, Sequence):
            for alias in node.names:
                name = dotted(alias.name)
                self.imported.add((module, name))
                self.origins[alias.evaluated_alias or name] = module

    def _llama_import(
        self, updated: cst.ImportFrom, module: str
    ) -> cst.ImportFrom | cst.RemovalSentinel:
        """``from llama_index.llms.azure_openai import AzureOpenAI`` ->
        ``from llama_index.llms.openai import OpenAI`` (dropped when already imported)."""
        target = module.replace("azure_openai", "openai")
        if isinstance(updated.names, cst.ImportStar):
            return updated
        kept = []
        for alias in updated.names:
            name = dotted(alias.name)
            new = _LLAMA_RENAMES.get(name, name)
            if alias.asname is None:
                self.renames[name] = new
                if (target, new) in self.imported:
                    continue
            kept.append(alias.with_changes(name=cst.Name(new), comma=cst.MaybeSentinel.DEFAULT))
        if not kept:
            return cst.RemovalSentinel.REMOVE
        return updated.with_changes(module=cst.parse_expression(target), names=kept)

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
        if original.value in self.renames:
            return updated.with_changes(value=self.renames[original.value])
        return updated

    # ----- endpoints and URLs ---------------------------------------------------------

    def leave_SimpleString(
        self, original: cst.SimpleString, updated: cst.SimpleString
    ) -> cst.BaseExpression:
        return self._string(original, updated, updated.evaluated_value)

    def leave_ConcatenatedString(
        self, original: cst.ConcatenatedString, updated: cst.ConcatenatedString
    ) -> cst.BaseExpression:
        value = updated.evaluated_value
        return self._string(original, updated, value if isinstance(value, str) else None)

    def _string(
        self, original: cst.BaseExpression, updated: cst.BaseExpression, value: str | bytes | None
    ) -> cst.BaseExpression:
        where = self._at(original)
        if where in self.t.endpoints:
            self.needs_os = True
            return cst.parse_expression(env_code(for_client(self.t.endpoints[where])))
        if where in self.t.raw and isinstance(value, str):
            endpoint = for_url(value)
            if endpoint is not None:
                self.needs_os = True
                code = env_code(endpoint)
                if endpoint.rest:
                    code = f"{code} + {string_literal(endpoint.rest)}"
                    parent = self.get_metadata(ParentNodeProvider, original)
                    if isinstance(parent, TIGHT):
                        code = f"({code})"
                return cst.parse_expression(code)
        return updated

    def leave_FormattedString(
        self, original: cst.FormattedString, updated: cst.FormattedString
    ) -> cst.BaseExpression:
        where = self._at(original)
        head = updated.parts[0] if updated.parts else None
        if where not in self.t.raw and where not in self.t.endpoints:
            return updated
        if not isinstance(head, cst.FormattedStringText):
            return updated
        endpoint = (
            for_url(head.value) if where in self.t.raw else for_client(self.t.endpoints[where])
        )
        if endpoint is None:
            return updated
        self.needs_os = True
        inner = "'" if '"' in updated.start else '"'
        expression = cst.FormattedStringExpression(cst.parse_expression(env_code(endpoint, inner)))
        rest = endpoint.rest if where in self.t.raw else ""
        parts: list[cst.BaseFormattedStringContent] = [expression]
        if rest:
            parts.append(cst.FormattedStringText(rest))
        return updated.with_changes(parts=[*parts, *updated.parts[1:]])

    # ----- clients and pre-1.0 calls --------------------------------------------------

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        where = self._at(original)
        if where in self.t.clients:
            return self._cloud_client(original, updated, self.t.clients[where])
        if where in self.t.legacy:
            return self._legacy_call(original, updated, where)
        if where in self.t.wrappers:
            return self._azure_wrapper(original, updated)
        return updated

    def _azure_wrapper(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        """LangChain's ``AzureChatOpenAI(azure_deployment="x")`` -> ``ChatOpenAI(model="x")``
        on the endpoint (the class name itself is renamed with its import)."""
        self.needs_os = True
        func = dotted(original.func)
        llama = self.origins.get(func, "").startswith("llama_index")
        args = list(updated.args)
        names = [a.keyword.value if a.keyword is not None else None for a in args]
        deployment = next(
            (a.value for a, n in zip(args, names, strict=True) if n in _DEPLOYMENT_ARGS), None
        )
        base = cst.parse_expression(env_code(for_client("openai")))
        added = [kwarg("api_base" if llama else "base_url", base)]
        if not set(names) & {"api_key", "openai_api_key"}:
            key = cst.parse_expression('os.environ.get("OPENAI_API_KEY", "unused")')
            added.append(kwarg("api_key", key))
        if deployment is not None and not set(names) & {"model", "model_name"}:
            added.append(kwarg("model", deployment))
        dropped = {i for i, n in enumerate(names) if n in _AZURE_WRAPPER_ARGS}
        args, dropped = inserted(args, dropped, 0, added)
        self._note(
            original,
            "changed",
            f"now the plain {'LlamaIndex' if llama else 'LangChain'} class on OPENAI_BASE_URL; "
            "the deployment name (or model) is what it asks offramp for (add it as an alias)",
        )
        return updated.with_changes(args=with_commas(without(args, dropped)))

    def _cloud_client(self, original: cst.Call, updated: cst.Call, sdk: Sdk) -> cst.Call:
        func = updated.func
        if isinstance(func, cst.Attribute) and func.attr.value in _RENAMES:
            func = func.with_changes(attr=cst.Name(_RENAMES[func.attr.value]))
        endpoint = for_client(sdk)
        self.needs_os = True
        base = cst.parse_expression(env_code(endpoint))
        args = list(updated.args)
        names = [a.keyword.value if a.keyword is not None else None for a in args]
        at = next((i for i, n in enumerate(names) if n in ("azure_endpoint", "base_url")), None)
        if at is not None:  # the endpoint takes the place (and the comment) of the old one
            args[at] = args[at].with_changes(keyword=cst.Name("base_url"), value=base)
        dropped = {i for i, n in enumerate(names) if n in _CLOUD_ARGS and i != at}
        added: list[cst.Arg] = [] if at is not None else [kwarg("base_url", base)]
        if "api_key" not in names:
            key_var = "ANTHROPIC_API_KEY" if "anthropic" in sdk else "OPENAI_API_KEY"
            key = cst.parse_expression(f'os.environ.get("{key_var}", "unused")')
            added.append(kwarg("api_key", key))
        if at is not None and added:  # the key goes right after the endpoint
            added[-1] = added[-1].with_changes(comma=args[at].comma)
            args[at] = args[at].with_changes(comma=_SPACED)
            args, dropped = inserted(args, dropped, at + 1, added)
        else:
            args, dropped = inserted(args, dropped, 0, added)
        text = f"now a plain client on {endpoint.var}"
        if dropped:
            gone = sorted(n for i, n in enumerate(names) if n in _CLOUD_ARGS and i != at)
            text += f"; dropped {', '.join(str(n) for n in gone)}"
        self._note(
            original,
            "changed",
            text + "; offramp must serve the deployment or model names this code asks for "
            "(add aliases for them)",
        )
        return updated.with_changes(func=func, args=with_commas(without(args, dropped)))

    def _legacy_call(
        self, original: cst.Call, updated: cst.Call, where: tuple[int, int]
    ) -> cst.BaseExpression:
        chain = dotted(updated.func)
        parts = chain.split(".")
        cls, method = parts[-2], parts[-1]
        path = _LEGACY.get(cls)
        if path is None or len(parts) > 3:
            self._note(original, "by-hand", f"{chain} has no 1.x equivalent to rewrite to")
            return updated
        if len(parts) == 3 and parts[0] in self.modules:
            module = parts[0]
        else:  # `from openai import ChatCompletion`: through the module, imported if need be
            module = sorted(self.modules)[0] if self.modules else "openai"
            self.needs_openai = not self.modules
        prefix = f"{module}.AsyncOpenAI()" if method == "acreate" else module
        args = list(updated.args)
        dropped: set[int] = set()
        for i, arg in enumerate(args):
            name = arg.keyword.value if arg.keyword is not None else None
            if name in ("engine", "deployment_id"):
                args[i] = arg.with_changes(keyword=cst.Name("model"))
            elif name == "request_timeout":
                args[i] = arg.with_changes(keyword=cst.Name("timeout"))
            elif name in _DROPPED_CALL_ARGS:
                self._note(
                    original,
                    "by-hand",
                    f"{name}= is not a per-call argument in 1.x; set it on the client",
                )
                dropped.add(i)
        call = updated.with_changes(
            func=cst.parse_expression(f"{prefix}.{path}"),
            args=with_commas(without(args, dropped)),
        )
        if where in self.t.as_dict and method != "acreate":
            return cst.Call(func=cst.Attribute(value=call, attr=cst.Name("model_dump")))
        return call

    def leave_Await(self, original: cst.Await, updated: cst.Await) -> cst.BaseExpression:
        if isinstance(original.expression, cst.Call):
            where = self._at(original.expression)
            if where in self.t.legacy and where in self.t.as_dict:
                wrapped = updated.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
                return cst.Call(func=cst.Attribute(value=wrapped, attr=cst.Name("model_dump")))
        return updated

    # ----- module-level settings ------------------------------------------------------

    def leave_Assign(self, original: cst.Assign, updated: cst.Assign) -> cst.Assign:
        target = updated.targets[0].target if len(updated.targets) == 1 else None
        if (
            isinstance(target, cst.Attribute)
            and isinstance(target.value, cst.Name)
            and target.value.value in self.modules
            and target.attr.value == "api_base"
        ):
            # 1.x joins paths onto the module's base_url as written: it must end in "/"
            new_target = target.with_changes(attr=cst.Name("base_url"))
            return updated.with_changes(
                targets=[updated.targets[0].with_changes(target=new_target)],
                value=slashed(updated.value),
            )
        return updated

    def leave_SimpleStatementLine(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | cst.RemovalSentinel:
        if len(updated.body) != 1 or not isinstance(updated.body[0], cst.Assign):
            return updated
        target = updated.body[0].targets[0].target
        if (
            self.t.legacy
            and isinstance(target, cst.Attribute)
            and isinstance(target.value, cst.Name)
            and target.value.value in self.modules
            and target.attr.value in _REMOVED_SETTINGS
        ):
            self._note(
                original, "changed", f"removed openai.{target.attr.value} (Azure-only setting)"
            )
            return cst.RemovalSentinel.REMOVE
        return updated
