. "$(dirname "${BASH_SOURCE[0]}")/../path.sh"
