# Sourced by recipe scripts: turns `--some-option value` into `some_option=value` for variables
# the script already defined, and leaves the positional arguments in "$@".
# `--help` prints the variables the script accepts.
_positional=()
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      echo "usage: $0 [options] $help_args" >&2
      grep -E '^[a-z_]+=' "$0" | sed 's/^/  --/; s/_/-/g' >&2
      exit 0 ;;
    --*=*)
      _name=${1%%=*}; _value=${1#*=}; _var=$(echo "${_name#--}" | tr - _)
      if ! declare -p "$_var" >/dev/null 2>&1; then echo "$0: unknown option $_name" >&2; exit 1; fi
      printf -v "$_var" '%s' "$_value"; shift ;;
    --*)
      _var=$(echo "${1#--}" | tr - _)
      if ! declare -p "$_var" >/dev/null 2>&1; then echo "$0: unknown option $1" >&2; exit 1; fi
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
      printf -v "$_var" '%s' "$2"; shift 2 ;;
    *) _positional+=("$1"); shift ;;
  esac
done
set -- "${_positional[@]+"${_positional[@]}"}"
