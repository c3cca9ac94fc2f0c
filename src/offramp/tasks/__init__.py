"""Declarative tasks: prompt templates, input/output schemas, validators and fallbacks.

A task is a file (YAML or JSON) in the package's ``builtin/`` folder or in the folder
named by ``Settings.tasks_dir``; the engine runs any of them the same way. Code enters
only through named hooks (static analysis, result assembly, domain validators,
fallbacks) that task files refer to by name.
"""
