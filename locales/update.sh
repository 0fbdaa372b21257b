#!/usr/bin/env bash
# Re-extract the messages from the code and merge them into both catalogs (run from anywhere).
set -euo pipefail
cd "$(dirname "$0")/.."
pybabel=${PYBABEL:-pybabel}
"$pybabel" extract -F locales/babel.cfg -k t -k N_ -k translate:2 -k button --no-location --sort-output \
    -o locales/gridbot.pot --project gridbot .
"$pybabel" update -i locales/gridbot.pot -d locales -D gridbot --no-fuzzy-matching --ignore-obsolete
