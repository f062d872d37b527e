#!/usr/bin/env bash
# test_man.sh - the man pages say everything the programs have:
#   smtpguard.conf(5): every key of the config table (smtpguardd
#     --list-keys) as "KEY = DEFAULT" with the table's default;
#   smtpguardd(8): every option of daemon/args.c (its getopt_long table and
#     short options);
#   smtpguardctl(8): every command of tools/smtpguardctl.c's table, every
#     option of tools/ctl_*.c's opt_spec tables, and the global ones;
# each page renders with `man -l` without a warning; the generator refuses a
# .conf that shows a key the table lacks, or lacks one; and the checks find
# a key, a command and an option taken out of a page (they can fail).
#   bash selftests/package/test_man.sh BUILD_DIR
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=../e2e/lib.sh
source "$repo/selftests/e2e/lib.sh"
build=${1:-}
[ -n "$build" ] || { echo "usage: bash $0 BUILD_DIR" >&2; exit 2; }
build=$(cd "$build" && pwd)
man_dir=$build/man
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# a page as text: no hyphenation, lines long enough not to wrap a term
render() { MANWIDTH=200 MAN_KEEP_FORMATTING= LC_ALL=C.UTF-8 man --nh -l "$1" 2>&1 | col -b; }

for p in smtpguard.conf.5 smtpguardd.8 smtpguardctl.8; do
	if [ ! -s "$man_dir/$p" ]; then
		fail "man-$p-built" "$man_dir/$p missing (make man)"
		continue
	fi
	warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$man_dir/$p" 2>&1 >/dev/null)
	check_eq "$warnings" "" "man-$p-renders-without-warnings"
	check_contains "$(render "$man_dir/$p")" "NAME" "man-$p-has-a-NAME"
done

# --- the keys: "   KEY = DEFAULT" in the KEYS section, as the table says
# missing_keys PAGE_TEXT: the keys --list-keys names that the text lacks
missing_keys() {
	local text=$1 line key def want missing=()
	while IFS= read -r line; do
		key=${line%% =*}
		def=${line#* =}; def=${def%%  (reload:*}; def=${def# }
		[ -n "$def" ] && want="$key = $def" || want="$key = (empty)"
		grep -qxF -- "       $want" <<<"$text" || missing+=("$key")
	done < <("$build/smtpguardd" --list-keys)
	echo "${missing[*]}"
}
conf_text=$(render "$man_dir/smtpguard.conf.5")
nkeys=$("$build/smtpguardd" --list-keys | wc -l)
check_gt "$nkeys" 50 "list-keys-lists-the-table"
check_eq "$(missing_keys "$conf_text")" "" "conf5-shows-every-key-with-its-default"
# a key taken out: the check names it
check_eq "$(missing_keys "$(grep -vE '^ +smtp_line_limit = ' <<<"$conf_text")")" smtp_line_limit \
	"conf5-check-finds-a-missing-key"

# --- smtpguardd's options, from daemon/args.c itself
daemon_opts() {
	sed -n 's/^[[:space:]]*{ "\([a-z-]*\)", [a-z_]*_argument,.*/--\1/p' "$repo/daemon/args.c"
	# the short options of getopt_long's string ("c:vh")
	sed -n 's/.*getopt_long(argc, argv, "\([^"]*\)".*/\1/p' "$repo/daemon/args.c" |
		tr -d ':' | grep -o . | sed 's/^/-/'
}
# missing_opts PAGE_TEXT OPTION...: those no line of the page's text names
missing_opts() {
	local text=$1 o missing=(); shift
	for o in "$@"; do
		grep -qE -- "(^|[[ ,])$o([] ,=]|$)" <<<"$text" || missing+=("$o")
	done
	echo "${missing[*]}"
}
mapfile -t dopts < <(daemon_opts)
check_gt "${#dopts[@]}" 7 "args.c-options-found"
d_text=$(render "$man_dir/smtpguardd.8")
check_eq "$(missing_opts "$d_text" "${dopts[@]}")" "" "smtpguardd8-names-every-option"
check_eq "$(missing_opts "$(grep -v -- '--purge' <<<"$d_text")" "${dopts[@]}")" --purge \
	"smtpguardd8-check-finds-a-missing-option"

# --- smtpguardctl's commands and options, from tools/
ctl_commands() {
	sed -n 's/^[[:space:]]*{ "\([a-z-]*\)", "\([a-z]*\)", cmd_[a-z_]* },/\1 \2/p; s/^[[:space:]]*{ "\([a-z-]*\)", NULL, cmd_[a-z_]* },/\1/p' \
		"$repo/tools/smtpguardctl.c"
}
ctl_opts() {
	grep -ohE '\{ "-[-a-z]+", &[a-z_]+ \}' "$repo"/tools/ctl_*.c | sed 's/{ "\([^"]*\)".*/\1/'
	grep -ohE 'strcmp\(argv\[a\], "-[-a-z]+"\)' "$repo/tools/smtpguardctl.c" | sed 's/.*"\(.*\)")/\1/'
}
# missing_commands PAGE_TEXT COMMAND...: those with no entry of their own
# (a line of the COMMANDS section that begins with the command)
missing_commands() {
	local text=$1 c missing=(); shift
	for c in "$@"; do
		grep -qE -- "^       $c( |$)" <<<"$text" || missing+=("$c")
	done
	local IFS=,
	echo "${missing[*]}"
}
mapfile -t cmds < <(ctl_commands)
mapfile -t copts < <(ctl_opts | sort -u)
check_ge "${#cmds[@]}" 13 "smtpguardctl.c-commands-found"
check_ge "${#copts[@]}" 15 "ctl-options-found"
c_text=$(render "$man_dir/smtpguardctl.8")
check_eq "$(missing_commands "$c_text" "${cmds[@]}")" "" "smtpguardctl8-has-every-command"
check_eq "$(missing_opts "$c_text" "${copts[@]}")" "" "smtpguardctl8-names-every-option"
check_eq "$(missing_commands "$(grep -vE '^ +unblock' <<<"$c_text")" "${cmds[@]}")" unblock \
	"smtpguardctl8-check-finds-a-missing-command"
check_eq "$(missing_opts "$(sed 's/--sessions//g' <<<"$c_text")" "${copts[@]}")" --sessions \
	"smtpguardctl8-check-finds-a-missing-option"

# --- the generator refuses a .conf that disagrees with the table
gen=$man_dir/gen_conf_man
tmpl=$repo/docs/man/smtpguard.conf.5.scd.in
if [ -x "$gen" ]; then
	{ cat "$repo/etc/smtpguard.conf"; echo "#no_such_key = 1"; } >"$tmp/extra.conf"
	out=$("$gen" "$tmpl" "$tmp/extra.conf" 2>&1 >/dev/null); rc=$?
	check_ne "$rc" 0 "generator-refuses-an-unknown-key"
	check_contains "$out" "key 'no_such_key' is not in the config table" "generator-names-the-unknown-key"
	grep -v '^#smtp_line_limit = ' "$repo/etc/smtpguard.conf" >"$tmp/short.conf"
	out=$("$gen" "$tmpl" "$tmp/short.conf" 2>&1 >/dev/null); rc=$?
	check_ne "$rc" 0 "generator-refuses-a-missing-key"
	check_contains "$out" "key 'smtp_line_limit' 0 times" "generator-names-the-missing-key"
	check_ok "generator-accepts-the-real-conf" "$gen" "$tmpl" "$repo/etc/smtpguard.conf"
else
	fail "generator-built" "$gen missing (make man)"
fi

echo "# man: $E2E_PASSES passed, $E2E_FAILS failed"
[ "$E2E_FAILS" -eq 0 ]
