#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The man page renders without a single groff warning, and it agrees with the code: every long
# option and every command that `imprint --help` lists is documented, and the EXIT STATUS section
# documents exactly the exit codes that the session's enum (src/session/session.c) defines. Needs no root.
. "$(dirname "$0")/lib.sh"
need_tool groff

SOURCE_ROOT=${SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
page=$SOURCE_ROOT/data/imprint.1
code=$SOURCE_ROOT/src/session/session.c
[ -f "$page" ] || fail "$page does not exist"
[ -f "$code" ] || fail "$code does not exist"

# 1. groff renders it without warnings (-ww: all of them).
groff -man -Tutf8 -ww "$page" >"$WORK/page.utf8" 2>"$WORK/groff.err" || { cat "$WORK/groff.err" >&2; fail "groff cannot render $page"; }
if [ -s "$WORK/groff.err" ]; then
        cat "$WORK/groff.err" >&2
        fail "groff warns about $page"
fi
[ -s "$WORK/page.utf8" ] || fail "groff rendered $page as nothing"
pass "the man page renders without groff warnings"

# For the checks below: plain text, one line per paragraph (a huge line length, so that no option
# name is broken across lines or hyphenated), without overstriking or escape sequences.
groff -man -Tutf8 -rLL=5000n -rHY=0 -P-cbou "$page" >"$WORK/page.txt" 2>/dev/null
if grep -q $'[\x08\x1b]' "$WORK/page.txt"; then
        fail "the plain-text rendering still holds control characters"
fi

# section NAME: the rendered lines of one top-level section (headings are upper case, unindented).
section() {
        awk -v want="$1" '/^[A-Z][A-Z ]*$/ { sec = $0; next } sec == want' "$WORK/page.txt"
}
for s in SYNOPSIS COMMANDS OPTIONS IMAGE BOOT "EXIT STATUS" EXAMPLES; do
        section "$s" >"$WORK/section.txt"
        grep -q '[a-z]' "$WORK/section.txt" || fail "the man page has no $s section"
done

expect_exit 0 "$IMPRINT" --help
cp "$WORK/stdout" "$WORK/help"

# 2. Every long option of --help is documented in OPTIONS, and OPTIONS documents no option that
# --help does not know.
section OPTIONS >"$WORK/options.txt"
grep -oE -- '--[a-z][a-z0-9-]*' "$WORK/help" | sort -u >"$WORK/help-options"
[ "$(wc -l <"$WORK/help-options")" -ge 10 ] || { cat "$WORK/help" >&2; fail "cannot find the long options in --help"; }
missing=()
while read -r o; do
        grep -qE -- "(^|[^a-z0-9-])$o([^a-z0-9-]|\$)" "$WORK/options.txt" || missing+=("$o")
done <"$WORK/help-options"
[ ${#missing[@]} -eq 0 ] || fail "options in --help but not in the man page's OPTIONS: ${missing[*]}"
grep -oE -- '(^|[^a-z0-9-])--[a-z][a-z0-9-]*' "$WORK/options.txt" | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u >"$WORK/page-options"
extra=$(comm -13 "$WORK/help-options" "$WORK/page-options" | tr '\n' ' ')
[ -z "$extra" ] || fail "options in the man page's OPTIONS that --help does not list: $extra"
pass "the man page documents the $(wc -l <"$WORK/help-options") long options of --help, and no others"

# 3. Every command of --help has a SYNOPSIS line, an entry in COMMANDS and an example.
awk '/^Commands:/ { on = 1; next } on && /^$/ { exit } on && /^  [a-z]/ { print $1 }' "$WORK/help" >"$WORK/verbs"
[ "$(wc -l <"$WORK/verbs")" -ge 1 ] || { cat "$WORK/help" >&2; fail "cannot find the commands in --help"; }
section SYNOPSIS >"$WORK/synopsis.txt"
section COMMANDS >"$WORK/commands.txt"
missing=()
while read -r v; do
        grep -qE "^imprint \[GLOBAL OPTIONS\] $v( |\$)" <(sed 's/^ *//' "$WORK/synopsis.txt") || missing+=("$v (SYNOPSIS)")
        grep -qE "^ {7}$v( |\$)" "$WORK/commands.txt" || missing+=("$v (COMMANDS)")
        grep -qE "^ +[\$#] imprint (-[a-z-]+ )*$v( |\$)" <(section EXAMPLES) || missing+=("$v (EXAMPLES)")
done <"$WORK/verbs"
[ ${#missing[@]} -eq 0 ] || fail "commands in --help that the man page does not document: ${missing[*]}"
pass "the man page documents the commands of --help: $(tr '\n' ' ' <"$WORK/verbs")"

# 4. EXIT STATUS documents exactly the exit codes of the enum in src/imprint.c: its members are
# the lines "EXIT_NAME = N,".
grep -oE '^[[:space:]]*EXIT_[A-Z_]+[[:space:]]*=[[:space:]]*[0-9]+[[:space:]]*,' "$code" | grep -oE '[0-9]+' \
        | sort -u >"$WORK/code-exits"
[ "$(wc -l <"$WORK/code-exits")" -ge 2 ] || fail "cannot find the EXIT_* enum in $code"
grep -qx 0 "$WORK/code-exits" || fail "the EXIT_* enum in $code does not define 0"
section "EXIT STATUS" | grep -oE '^ {7}[0-9]+( |$)' | tr -d ' ' | sort -u >"$WORK/page-exits"
undocumented=$(comm -23 "$WORK/code-exits" "$WORK/page-exits" | tr '\n' ' ')
[ -z "$undocumented" ] || fail "exit codes defined in src/imprint.c but not documented in EXIT STATUS: $undocumented"
extra=$(comm -13 "$WORK/code-exits" "$WORK/page-exits" | tr '\n' ' ')
[ -z "$extra" ] || fail "exit codes documented in EXIT STATUS that src/imprint.c does not define: $extra"
pass "EXIT STATUS documents exit codes $(sort -n "$WORK/code-exits" | tr '\n' ' ')as src/imprint.c defines them"
