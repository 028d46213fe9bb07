#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# imprint --plain speaks the full-screen installer's languages. A whole install is typed in German
# (chosen by its number in the first question) and in French (preselected from LANGUAGE=fr, kept
# with Enter): every question is asked in that language, the localized yes letter (j, o) works,
# a wrong answer is refused in that language, and the result is the same install as in English
# (stock sfdisk, mtools and debugfs look), with the chosen language's locale and keymap as the
# installed system's. Also: --lang preselects, and an unknown --lang is refused.
. "$(dirname "$0")/lib.sh"
need_root "loop devices"
need_tool objcopy debugfs useradd

LOCALEDIR=$(dirname "$IMPRINT")/po
[ -f "$LOCALEDIR/de/LC_MESSAGES/imprint.mo" ] || fail "no German catalog under $LOCALEDIR (the build makes it)"

src=$WORK/fakeos.img
FAKE_DDI_ACCOUNTS=1 bash "$(dirname "$0")/make-fake-ddi.sh" "$src" 200
tgt=$WORK/disk.img
truncate -s 4G "$tgt"
attach "$tgt"
dev=$ATTACHED
name=${dev#/dev/}
# The account's password comes as a credential, as on a live medium given one (a pipe is no
# terminal to ask on).
mkdir -p "$WORK/creds"
printf '%s' "Gelbe Lampe 47 unter dem Tisch" >"$WORK/creds/imprint.user-password"

# run_dialogue LANG TRANSCRIPT [ENV…] -- [ARGS…]: answers each question of the dialogue in LANG
# (the answer tables below, one per language) as it appears; prompts end without a newline, so
# the driver reads byte by byte.
run_dialogue() {
        local lang=$1 transcript=$2
        shift 2
        local env=()
        while [ "$1" != -- ]; do env+=("$1"); shift; done
        shift
        env -u LANGUAGE -u LC_ALL -u LC_MESSAGES LANG=C.UTF-8 IMPRINT_LOCALEDIR="$LOCALEDIR" "${env[@]}" \
                CREDENTIALS_DIRECTORY="$WORK/creds" /usr/bin/python3 - "$lang" "$IMPRINT" "$src" "$dev" "$transcript" "$@" <<'PY'
import os, re, select, subprocess, sys, time
lang, imprint, src, dev, transcript = sys.argv[1:6]
args = sys.argv[6:]
name = os.path.basename(dev)
p = subprocess.Popen([imprint, "--plain", "--source", src] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT)
disk = lambda text: re.search(r"^\s*(\d+)\) " + re.escape(dev) + " ", text, re.M).group(1)
# (pattern, answers): the answers are used in turn, the last one from then on.
tables = {
    "de": [
        (r"3\) Français\n[^\n]*\]: $", ["2"]),
        (r"2\) Ein installiertes System zurücksetzen[^\n]*\n[^\n]*\]: $", [""]),
        (r"Auf welchem Laufwerk installieren\? \[[^]]*\]: $", [disk]),
        (r"freien Platz nutzen \(f\)\? \[e\]: $", ["e"]),
        (r"oder drücken Sie die Eingabetaste für keine: $", [""]),
        (r"Root und Home verschlüsseln \(empfohlen\)\? \[J/n\]: $", ["vielleicht", "n"]),
        (r"Benutzername \(Kleinbuchstaben; Eingabetaste für keinen\): $", ["anna"]),
        (r"Ihr voller Name: $", ["Anna Beispiel"]),
        (r"Darf dieses Konto das System verwalten \(sudo\)\? j/n \[j\]: $", ["j"]),
        (r"(Computername|Zeitzone) \[[^]]*\]: $", ["-"]),
        (r"(Sprache \(Locale\)|Tastaturbelegung \(Keymap\)) \[[^]]*\]: $", [""]),
        (r"Geben Sie \"" + re.escape(name) + r"\" ein, um zu installieren; alles andere geht zurück: $", [name]),
        (r"oder Shell \[s\]\? $", ["s"]),
    ],
    "fr": [
        (r"3\) Français\n[^\n]*\] : $", [""]),
        (r"2\) Réinitialiser un système installé[^\n]*\n[^\n]*\] : $", ["1"]),
        (r"Installer sur quel disque \? \[[^]]*\] : $", [disk]),
        (r"utiliser l'espace libre \(f\) \? \[e\] : $", ["e"]),
        (r"ou appuyez sur Entrée pour aucune : $", [""]),
        (r"Chiffrer la racine et home \(recommandé\) \? \[O/n\] : $", ["peut-être", "n"]),
        (r"Nom d'utilisateur \(en minuscules ; Entrée pour aucun\) : $", ["bruno"]),
        (r"Votre nom complet : $", ["Bruno Exemple"]),
        (r"Ce compte peut-il administrer le système \(sudo\) \? o/n \[o\] : $", ["o"]),
        (r"(Nom de l'ordinateur|Fuseau horaire) \[[^]]*\] : $", ["-"]),
        (r"(Langue \(locale\)|Disposition du clavier \(keymap\)) \[[^]]*\] : $", [""]),
        (r"Tapez « " + re.escape(name) + r" » pour installer, toute autre réponse revient en arrière : $", [name]),
        (r"ou shell \[s\] \? $", ["s"]),
    ],
}
answers = [(re.compile(pat), list(a)) for pat, a in tables[lang]]
out, pending, deadline = b"", b"", time.time() + 120
while time.time() < deadline:
    # A question nobody answers (a prompt the tables do not know) ends the run at the deadline.
    if not select.select([p.stdout], [], [], max(deadline - time.time(), 0))[0]:
        break
    b = os.read(p.stdout.fileno(), 4096)
    if not b:
        break
    out += b
    pending += b
    text = pending.decode(errors="replace")
    for pattern, replies in answers:
        if pattern.search(text):
            reply = replies.pop(0) if len(replies) > 1 else replies[0]
            reply = reply(out.decode(errors="replace")) if callable(reply) else reply
            out += (reply + "\n").encode()
            p.stdin.write((reply + "\n").encode())
            p.stdin.flush()
            pending = b""
            break
p.stdin.close()
try:
    code = p.wait(timeout=60)
except subprocess.TimeoutExpired:
    p.kill()
    code = p.wait()
open(transcript, "wb").write(out + b"\nexit status %d\n" % code)
PY
}

# fsx COMMAND: debugfs on the installed root (partition 2 of the test's disk).
fsx() { debugfs -R "$1" "${dev}p2" 2>/dev/null; }

# same_install USER REALNAME LOCALE KEYMAP: what a user would check on the disk afterwards.
same_install() {
        sfdisk --json "$dev" | jq -e '[.partitiontable.partitions[].type] == ["C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"]' >/dev/null \
                || fail "sfdisk does not show ESP and root on $dev"
        MTOOLS_SKIP_CHECK=1 mdir -b -i "${dev}p1" ::/EFI/Linux 2>/dev/null | grep -q fakeos_7.efi || fail "the UKI is not on the ESP"
        fsx 'cat /etc/passwd' | grep -qx "$1:x:[0-9]*:[0-9]*:$2:/home/$1:/bin/bash" || { fsx 'cat /etc/passwd' >&2; fail "$1 is not in /etc/passwd"; }
        fsx 'cat /etc/group' | grep -q "^sudo:x:27:$1\$" || fail "$1 is not in the sudo group: the localized yes was not taken"
        { fsx 'cat /etc/locale.conf'; fsx 'cat /etc/default/locale'; } | grep -qx "LANG=$3" || fail "the locale is not LANG=$3"
        { fsx 'cat /etc/vconsole.conf'; fsx 'cat /etc/default/keyboard'; } | grep -qx "KEYMAP=$4" || fail "the keymap is not $4"
}

# --- German, chosen by its number ------------------------------------------------------------------
t=$WORK/de.txt
run_dialogue de "$t" --
grep -q "exit status 0" "$t" || { cat "$t" >&2; fail "the German dialogue did not finish"; }
for s in "Which language? \[number, Enter for 1 (English)\]" "Willkommen bei imprint\." "Installiert wird Imprint Fake OS 7 aus " \
         "Laufwerke:" "Bitte geben Sie j oder n ein\." "Ihr Konto auf dem installierten System\." \
         "Sprache (Locale) \[de_DE\.UTF-8\]" "Tastaturbelegung (Keymap) \[de\]" "ZERSTÖRT alles darauf" \
         "Imprint Fake OS 7 ist auf $dev installiert\. Entfernen Sie das Installationsmedium"; do
        grep -q "$s" "$t" || { cat "$t" >&2; fail "the German dialogue does not say: $s"; }
done
for s in "Welcome to imprint" "Install to which disk" "Encrypt root and home" "User name" "DESTROYS" "is installed on"; do
        ! grep -q "$s" "$t" || { cat "$t" >&2; fail "the German dialogue still says in English: $s"; }
done
pass "the dialogue asks in German, refuses a wrong answer in German and takes \"j\" for yes"
same_install anna "Anna Beispiel" de_DE.UTF-8 de
pass "the German dialogue installs: ESP and root, the UKI, anna in sudo, locale de_DE.UTF-8, keymap de"

# --- French, preselected by the environment --------------------------------------------------------
t=$WORK/fr.txt
run_dialogue fr "$t" LANGUAGE=fr --
grep -q "exit status 0" "$t" || { cat "$t" >&2; fail "the French dialogue did not finish"; }
for s in "Quelle langue ? \[numéro, Entrée pour 3 (Français)\]" "Bienvenue dans imprint\." "Ceci installe Imprint Fake OS 7 depuis " \
         "Disques :" "Effacer tout le disque (e)" "Veuillez taper o ou n\." "Votre compte sur le système installé\." \
         "Langue (locale) \[fr_FR\.UTF-8\]" "Disposition du clavier (keymap) \[fr\]" "DÉTRUIT tout ce qu'il contient" \
         "Imprint Fake OS 7 est installé sur $dev\. Retirez le support d'installation"; do
        grep -q "$s" "$t" || { cat "$t" >&2; fail "the French dialogue does not say: $s"; }
done
for s in "Welcome to imprint" "Install to which disk" "Erase the whole disk" "User name" "DESTROYS" "is installed on"; do
        ! grep -q "$s" "$t" || { cat "$t" >&2; fail "the French dialogue still says in English: $s"; }
done
pass "LANGUAGE=fr preselects French, Enter keeps it; \"o\" is yes"
same_install bruno "Bruno Exemple" fr_FR.UTF-8 fr
pass "the French dialogue installs: ESP and root, the UKI, bruno in sudo, locale fr_FR.UTF-8, keymap fr"

# --- --lang ---------------------------------------------------------------------------------------
sum=$(checksum "$tgt")
printf '\n' | env -u LANGUAGE -u LC_ALL -u LC_MESSAGES LANG=C.UTF-8 IMPRINT_LOCALEDIR="$LOCALEDIR" \
        "$IMPRINT" --plain --lang de --source "$src" >"$WORK/lang.txt" 2>&1 || true
grep -q "Eingabetaste für 2 (Deutsch)" "$WORK/lang.txt" && grep -q "Willkommen bei imprint\." "$WORK/lang.txt" \
        && grep -q "Es wurde nichts geschrieben\." "$WORK/lang.txt" || { cat "$WORK/lang.txt" >&2; fail "--lang de does not preselect German"; }
[ "$(checksum "$tgt")" = "$sum" ] || fail "a dialogue that ended early changed the disk"
expect_exit 2 "$IMPRINT" --plain --lang xx --source "$src" </dev/null
expect_stderr "--lang=xx"
pass "--lang de preselects German (input ending writes nothing); --lang xx is refused"
