# Sourced by recipe scripts: turns `--some-option value` into `some_option=value` for variables
# the script already defined, and leaves the positional arguments in "$@".
# A script that hands the other options on to a task script (a corpus's run.sh to utils/asr.sh,
# as ESPnet's run.sh does) sets forward_options=true first: options it does not define then stay
# in "$@", in order, instead of being refused.
# `--help` prints the variables the script accepts (those set before it sources this).
_positional=()
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      echo "usage: $0 [options] $help_args" >&2
      sed '/parse_options.sh/q' "$0" | grep -E '^[a-z_]+=' | grep -Ev '^(help_args|forward_options)=' |
        sed 's/^/  --/; s/_/-/g' >&2
      exit 0 ;;
    --*=*)
      _name=${1%%=*}; _value=${1#*=}; _var=$(echo "${_name#--}" | tr - _)
      if ! declare -p "$_var" >/dev/null 2>&1; then
        ${forward_options:-false} || { echo "$0: unknown option $_name" >&2; exit 1; }
        _positional+=("$1")
      else
        printf -v "$_var" '%s' "$_value"
      fi
      shift ;;
    --*)
      _var=$(echo "${1#--}" | tr - _)
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
      if ! declare -p "$_var" >/dev/null 2>&1; then
        ${forward_options:-false} || { echo "$0: unknown option $1" >&2; exit 1; }
        _positional+=("$1" "$2")
      else
        printf -v "$_var" '%s' "$2"
      fi
      shift 2 ;;
    *) _positional+=("$1"); shift ;;
  esac
done
set -- "${_positional[@]+"${_positional[@]}"}"
