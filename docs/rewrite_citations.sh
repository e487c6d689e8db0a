#!/usr/bin/env bash
# Point the code's citations of the protocol reference at the notes in docs/ (issue 15):
#   focus-behaviour(.md) §X / #N  ->  docs/jicofo.md §X / #N
#   bridge-protocol(.md) §X       ->  docs/jvb.md §X
#   client-protocol(.md) §X       ->  docs/client.md §X
# and names the document for the few bare `§X` whose module cites more than one document (or
# none). Only comment and docstring text changes; every new name is shorter than the one it
# replaces, so only the bare-§ lines grow. Safe to run again (a second run changes nothing), and
# meant to be re-run on a merged tree. Run from anywhere inside the repository; check with
# `git diff` and `ruff check jicofo tests bench` afterwards.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

# Bare section signs that need their document named: file, then a perl substitution on the whole
# file (-0: patterns may span lines). A file that does not exist is skipped.
qualify() {
    local file=$1 expr=$2
    [ -f "$file" ] && perl -0pi -e "$expr" "$file"
    return 0
}
qualify jicofo/stats.py 's/§5 of the\n(\s*)reference\)/§5 of\n${1}docs\/jicofo.md)/'
qualify jicofo/focus.py 's/metadata, §7\.20\)/metadata, docs\/jicofo.md §7.20)/'
qualify jicofo/sim/bridge.py 's/ \(§2\.8\)/ (docs\/jvb.md §2.8)/; s/ \(§2\.6\)/ (docs\/jvb.md §2.6)/'
qualify jicofo/sim/participant.py \
    's/ and the bridge-session id \(§7\.8\)\."""/ and the bridge-session id\n        (docs\/jicofo.md §7.8)."""/'
qualify jicofo/sim/participant.py \
    's/new session \(§3\.6\): session-terminate with `<success\/>` "restart\n(\s*)required"/new session (docs\/client.md §3.6): session-terminate with `<success\/>`\n${1}"restart required"/;
     s/lib-jitsi-meet \(§3\.7\)/lib-jitsi-meet (docs\/client.md §3.7)/'
qualify jicofo/bridge/colibri.py \
    's/\(§2\.10 tables\)/(docs\/jicofo.md §2.10 tables)/; s/background requests, §2\.10,/background requests, docs\/jicofo.md §2.10,/'
qualify jicofo/xmlns/presence_ext.py 's/\(focus presence, §2\.7\)/(focus presence, docs\/jicofo.md §2.7)/'
qualify jicofo/bridge/brewery.py 's/\(#45, #46, #56-#59\)/(docs\/jicofo.md #45-#46, #56-#59)/'
qualify tests/test_cascade.py \
    's/"""§2\.10:(.*) its members are\n(\s*)re-invited/"""docs\/jicofo.md §2.10:${1} its members\n${2}are re-invited/;
     s/\(§2\.10: any/(docs\/jicofo.md §2.10: any/'
qualify tests/test_participant_sim.py \
    's/Restart \(§3\.6\)/Restart (docs\/client.md §3.6)/; s/report \(§7\.8\)/report (docs\/jicofo.md §7.8)/; s/restart \(§3\.7\)/restart (docs\/client.md §3.7)/'
qualify tests/test_xmlns_colibri2.py 's/colibri_stats\), §1\.4\./colibri_stats), docs\/jvb.md §1.4./'
# Two test modules hold XML copied from the reference itself, not from our notes: say so.
qualify tests/test_xmlns_jingle.py 's/Examples copied from focus-behaviour\.md /Examples copied from the reference behind docs\/jicofo.md §7 /'
qualify tests/test_xmlns_colibri2.py 's/Examples copied from bridge-protocol\.md §2\.7\./Examples copied from the reference behind docs\/jvb.md §2.7./'

# The document names, everywhere in the code (with or without `.md`).
{ git grep -lIE 'focus-behaviour|bridge-protocol|client-protocol' -- jicofo tests bench || true; } \
    | while IFS= read -r file; do
        perl -pi -e '
            s/\bfocus-behaviour(?:\.md)?/docs\/jicofo.md/g;
            s/\bbridge-protocol(?:\.md)?/docs\/jvb.md/g;
            s/\bclient-protocol(?:\.md)?/docs\/client.md/g;
        ' "$file"
    done

# Report (change nothing): bare `§N` left in a file that names none or several of the notes, and
# citations of a section no note has. On a merged tree where code moved, these are the lines to
# look at by hand. Section signs after RFC / XEP are not ours and are skipped.
python3 - <<'PY'
import pathlib, re, subprocess

notes = {}
for name in ("jicofo", "jvb", "client"):
    text = pathlib.Path(f"docs/{name}.md").read_text(encoding="utf-8")
    notes[name] = set(re.findall(r"^#+ §([0-9.]+)", text, re.M))
files = subprocess.run(["git", "grep", "-lI", "§", "--", "jicofo", "tests", "bench"],
                       capture_output=True, text=True).stdout.split()
for path in files:
    text = pathlib.Path(path).read_text(encoding="utf-8")
    named = set(re.findall(r"docs/(jicofo|jvb|client)\.md", text))
    for m in re.finditer(r"§([0-9]+(?:\.[0-9]+)*)", text):
        before = text[max(0, m.start() - 12):m.start()]
        if re.search(r"(RFC|XEP)[- 0-9]*$", before):
            continue
        line = text.count("\n", 0, m.start()) + 1
        if not named:
            if re.search(r"RFC \d|XEP-\d", text):
                continue  # a file about the XMPP standards cites their sections
            print(f"{path}:{line}: §{m.group(1)} names no document")
        elif not any(m.group(1) in notes[n] for n in named):
            print(f"{path}:{line}: §{m.group(1)} is in none of {sorted(named)}")
        elif len(named) > 1 and not re.search(r"docs/\w+\.md[^\n§]{0,3}$", text[:m.start()]):
            near = text[max(0, m.start() - 200):m.start()]
            if not re.search(r"docs/\w+\.md", near):
                print(f"{path}:{line}: bare §{m.group(1)} in a file citing {sorted(named)}")
PY
