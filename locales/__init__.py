"""Gettext catalogs for zh_Hans_CN and bo (managed with Babel; see locales/README.md)."""
