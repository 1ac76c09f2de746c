"""The production storage of static files: WhiteNoise's compressed, content-hashed files, with
the ES-module imports of the field app (static/field/*.js: `import ... from "./rules.js"`)
rewritten to the hashed names, so a module and the modules it imports always come from the same
release. Only the field app's own modules: Django's switch for this
(`support_js_module_import_aggregation`) would rewrite every package's scripts, and some (e.g.
django-htmx's extensions) import names that are not files."""

from __future__ import annotations

from django.contrib.staticfiles.storage import ManifestStaticFilesStorage
from whitenoise.storage import CompressedManifestStaticFilesStorage

# Django's own patterns for `import ... from "..."` and `export ... from "..."` (not typed in
# django-stubs: a private attribute, read once here).
_MODULE_IMPORTS = ManifestStaticFilesStorage._js_module_import_aggregation_patterns[1]  # type: ignore[attr-defined]


class PortalStaticFilesStorage(CompressedManifestStaticFilesStorage):
    patterns = (*CompressedManifestStaticFilesStorage.patterns, ("field/*.js", _MODULE_IMPORTS))
