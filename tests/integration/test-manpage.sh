#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The man page renders without a single groff warning, and it agrees with the code: every long
# option and every command that `imprint --help` lists is documented, and the EXIT STATUS section
# documents exactly the exit codes that the session's enum (src/session/session.c) defines.
# imprint-varlink(7) renders without warnings too and agrees with the interface it documents: every
# method, error, type and field of data/io.imprint.Installer.varlink is in it, and its DIFFERENCES
# FROM io.systemd.SysInstall section names every field of SysInstall's Run and ListCandidateDevices.
# Needs no root.
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

# 5. imprint-varlink(7): renders without warnings, has its sections, and documents the interface.
vpage=$SOURCE_ROOT/data/imprint-varlink.7
idl=$SOURCE_ROOT/data/io.imprint.Installer.varlink
[ -f "$vpage" ] || fail "$vpage does not exist"
[ -f "$idl" ] || fail "$idl does not exist"
groff -man -Tutf8 -ww "$vpage" >"$WORK/vpage.utf8" 2>"$WORK/vgroff.err" || { cat "$WORK/vgroff.err" >&2; fail "groff cannot render $vpage"; }
if [ -s "$WORK/vgroff.err" ]; then
        cat "$WORK/vgroff.err" >&2
        fail "groff warns about $vpage"
fi
groff -man -Tutf8 -rLL=5000n -rHY=0 -P-cbou "$vpage" >"$WORK/page.txt" 2>/dev/null
# Its headings have lower case letters too ("DIFFERENCES FROM io.systemd.SysInstall"): every line
# that starts in the first column is one (the text is indented).
section() {
        awk -v want="$1" '/^[^ ]/ { sec = $0; next } sec == want' "$WORK/page.txt"
}
for s in "HOW IT RUNS" TYPES METHODS "THE RECOVERY KEY" ERRORS EXAMPLES "DIFFERENCES FROM io.systemd.SysInstall"; do
        section "$s" >"$WORK/section.txt"
        grep -q '[a-z]' "$WORK/section.txt" || fail "imprint-varlink(7) has no $s section"
done
pass "imprint-varlink(7) renders without groff warnings and has its sections"
# word WORD FILE: WORD stands alone in FILE (not as part of a longer name).
word() { grep -qE "(^|[^A-Za-z0-9_])$1([^A-Za-z0-9_]|\$)" "$2"; }
# Methods in METHODS, errors in ERRORS, types in TYPES, and every field (parameters, replies, error
# parameters, members of InstallRequest) somewhere in the page.
missing=()
section METHODS >"$WORK/methods.txt"
section ERRORS >"$WORK/errors.txt"
section TYPES >"$WORK/types.txt"
for m in $(sed -n 's/^method \([A-Za-z]*\).*/\1/p' "$idl"); do word "$m" "$WORK/methods.txt" || missing+=("method $m"); done
for e in $(sed -n 's/^error \([A-Za-z]*\).*/\1/p' "$idl"); do word "$e" "$WORK/errors.txt" || missing+=("error $e"); done
for t in $(sed -n 's/^type \([A-Za-z]*\).*/\1/p' "$idl"); do word "$t" "$WORK/types.txt" || missing+=("type $t"); done
for v in $(sed -n 's/^type [A-Za-z]* (\([a-z_, ]*\))$/\1/p' "$idl" | tr ',' ' '); do word "$v" "$WORK/types.txt" || missing+=("value $v"); done
fields=$(grep -v '^ *#' "$idl" | grep -oE '(^[[:space:]]*|[(,][[:space:]]*)[a-zA-Z]+[[:space:]]*:' | grep -oE '[a-zA-Z]+' | sort -u)
[ "$(wc -w <<<"$fields")" -ge 40 ] || fail "cannot find the fields in $idl"
for f in $fields; do word "$f" "$WORK/page.txt" || missing+=("field $f"); done
[ ${#missing[@]} -eq 0 ] || fail "imprint-varlink(7) does not document: ${missing[*]}"
pass "imprint-varlink(7) documents the $(grep -c '^method ' "$idl") methods, $(grep -c '^error ' "$idl") errors, $(grep -c '^type ' "$idl") types and $(wc -w <<<"$fields") fields of io.imprint.Installer"
# The differences from systemd's io.systemd.SysInstall, field by field: each of its names (Run's
# parameters and replies, ListCandidateDevices' parameters and replies, its enum values and its
# error) is discussed in that section.
section "DIFFERENCES FROM io.systemd.SysInstall" >"$WORK/diff.txt"
missing=()
for f in Run node definitions erase variables kernelImage copyLocale copyKeymap copyTimezone credentials \
        phase object progress ListCandidateDevices subscribe action symlinks diskseq sizeBytes vendor model \
        subsystem fit minimalSizeBytes needFreeBytes currentSizeBytes insufficent_free_space NoCandidateDevices; do
        word "$f" "$WORK/diff.txt" || missing+=("$f")
done
[ ${#missing[@]} -eq 0 ] || fail "DIFFERENCES FROM io.systemd.SysInstall does not discuss: ${missing[*]}"
pass "imprint-varlink(7) compares io.systemd.SysInstall field by field"

# 6. imprint-images(7): renders without warnings and has the sections image builders look for.
ipage=$SOURCE_ROOT/data/imprint-images.7
[ -f "$ipage" ] || fail "$ipage does not exist"
groff -man -Tutf8 -ww "$ipage" >"$WORK/ipage.utf8" 2>"$WORK/igroff.err" || { cat "$WORK/igroff.err" >&2; fail "groff cannot render $ipage"; }
if [ -s "$WORK/igroff.err" ]; then
        cat "$WORK/igroff.err" >&2
        fail "groff warns about $ipage"
fi
groff -man -Tutf8 -rLL=5000n -rHY=0 -P-cbou "$ipage" >"$WORK/page.txt" 2>/dev/null
for s in "IMAGE KINDS" "WHAT IMPRINT READS" "LAYOUT RULES" REFUSALS "WHAT AN IMAGE SHOULD CARRY" EXAMPLES STANDARDS; do
        section "$s" >"$WORK/section.txt"
        grep -q '[a-z]' "$WORK/section.txt" || fail "imprint-images(7) has no $s section"
done
pass "imprint-images(7) renders without groff warnings and has its sections"
