/**
 * The words of `dfs --help` and `dfs COMMAND --help` beyond what commander generates: what each
 * command does in detail, examples, and where the API is. Exit codes come from cli/exit.ts.
 */

export const EXAMPLES = `Examples:
  $ dfs ls                                     every file, its size, state and stores
  $ dfs get fileA.txt
  $ dfs get fileB.txt --resolve newest
  $ dfs get photos/ -o ~/restore               every file under photos/
  $ dfs cat notes.txt | less
  $ dfs stat fileB.txt                         each store's copy, nothing downloaded
  $ dfs put ./report.pdf --as docs/report.pdf
  $ dfs put ./photos                           a folder, as photos/…
  $ tar c src | dfs put - --as backups/src.tar
  $ dfs rm docs/old.pdf -y
  $ dfs sync --dry-run                         what differs between the stores, and why
  $ dfs watch                                  what the servers do, live (Ctrl-C stops)
  $ dfs lock 1 --reason "editing" --ttl 2h     hold others' writes to file #1 of dfs ls
  $ dfs unlock 1                               apply the held writes, then release
  $ dfs locks                                  who holds what, and how much is held
  $ dfs token create ann --read-only           a token for ann, who may only read
  $ dfs --endpoint https://abc.execute-api.eu-west-1.amazonaws.com ls
  $ dfs version                                which dfs this is`;

export const CONNECTION_HELP = `Where the API is (first found wins):
  --endpoint URL, DFS_ENDPOINT, "endpoint" in the config file, the local stack's (as npm
  start left it in $DFS_DATA_DIR/local.json, default .dfs-data/local.json), then
  http://localhost:3000.
  With --via lambda: DFS_LAMBDA_ENDPOINT / "lambdaEndpoint" (default the local stack's, else
  http://localhost:3002) and DFS_FUNCTION / "functionName" (default s3-dfs-local-api).
  Config file: $DFS_CONFIG, else $XDG_CONFIG_HOME/dfs/config.json, else ~/.config/dfs/config.json.
The token (first found wins; never an argument, where other users could see it):
  DFS_TOKEN, "token" in the config file (then yours alone: chmod 600), the local stack's when
  the endpoint is that stack (this machine, same port). --via lambda needs none: IAM decides.
Timeouts: DFS_CONNECT_TIMEOUT (default 10 s) and DFS_IDLE_TIMEOUT (60 s: nothing received for
  that long), or "connectTimeout" / "idleTimeout" in seconds in the config file. The config file
  holds only endpoint, lambdaEndpoint, functionName, token, connectTimeout and idleTimeout.`;

export const GET_HELP = `
What is saved:
  identical copies (SINGLE)  DIR/NAME; folders in NAME are created inside DIR
  differing copies           one file per version, named after the store(s) holding it:
                             fileB.server1.txt, fileB.server2.txt (README.server1 without
                             an extension; fileB.server1+server3.txt when shared)
  --resolve newest|STORE     only that version, as DIR/NAME
  PREFIX/                    every file whose name starts with PREFIX/, each saved as above,
                             --jobs at a time, with one progress line on a terminal
  -o -                       the file to stdout instead, as dfs cat
  Existing files are never replaced without --force; if any target exists, nothing is written.
  --skip-existing leaves them alone instead, saying "already up to date" when identical.
  Files are written under a temporary name and moved into place when complete, so Ctrl-C
  (exit 130) leaves no partial file; it says what was saved and what was not.

--json prints the API answer with inline content replaced by {"inlineBytes": N} (download
URLs are kept), plus "saved": the paths written. Errors print {"error", "message"}.

Examples:
  $ dfs get fileA.txt                          saves ./fileA.txt
  $ dfs get docs/report.pdf -o ~/Downloads     saves ~/Downloads/docs/report.pdf
  $ dfs get fileB.txt                          copies differ: saves ./fileB.server1.txt
                                               and ./fileB.server2.txt
  $ dfs get fileB.txt --resolve newest --force replaces ./fileB.txt with the newest
  $ dfs get fileB.txt --json | jq .status
  $ dfs get docs/ -o backup                    every file under docs/, into backup/docs/…
  $ dfs get docs/ --skip-existing              only what is not here yet
  $ dfs get fileA.txt -o - | wc -c
  $ dfs get -- -odd-name.txt                   a name that starts with "-"`;

export const CAT_HELP = `
Writes the file's bytes to stdout, streamed, for pipes: identical copies (SINGLE) are written;
when the stores hold different versions (DIFFERENT) nothing is written and the exit code is 4,
unless --resolve picks one. What else is said goes to stderr. A file that is not found is exit 3.
Ctrl-C (exit 130) says how many bytes stdout got.

--json prints the API answer on stderr when nothing was written (stdout is for the bytes).

Examples:
  $ dfs cat fileA.txt
  $ dfs cat big.iso | sha256sum
  $ dfs cat fileB.txt --resolve newest > fileB.txt
  $ dfs cat fileB.txt --resolve server1 | diff - local.txt`;

export const STAT_HELP = `
Asks the API for the file's metadata (GET /files/NAME?meta=1: no content is read) and prints
the answer: SINGLE or DIFFERENT, then one row per store with its copy's size, modification
time (the logical mtime), ETag and which version it holds (1, 2, …; the newest marked).
Exit codes as for get: 0 SINGLE, 4 DIFFERENT, 3 not found.

--json prints the API answer {"status", "key", "copies" | "versions", "unavailable"}.

Examples:
  $ dfs stat fileB.txt
  $ dfs stat docs/report.pdf --json | jq '.copies[].store'`;

export const LS_HELP = `
Columns:
  #         place in the whole listing, 0..n-1, in the server's (S3 byte) order
  SIZE      of the most recently written copy; MODIFIED is when the store wrote that copy
            (S3's LastModified: listings carry no logical mtime), local time, to the minute
  STATE     same        every store holds it, provably identical
            different   at least two stores hold different content
            partial     some store that answered lacks it
            unverified  cheap evidence (sizes, single-part ETags) could not decide;
                        --verify settles it with a metadata read per such file (no bodies)
  LOCK      only when some file is locked: holder@store(updates held) per locked store,
            e.g. ann@server1(3); "-" for a file without a lock (dfs locks has the details)
  STORES    the stores holding it, then the ones missing it: server2 (missing: server1)
  Stores that did not answer are named in a warning on stderr, not marked as missing.
  Pages of 1,000 names are printed as they arrive. The # is what dfs lock and dfs unlock
  take as INDEX (the # of a listing without PREFIX).

--json prints {"files": [{"index", "name", "size", "mtime", "state", "stores", "lock"}, …],
"unavailable", "count", "pages"} ("verified": N with --verify), one file per line; "lock" is
null or {STORE: {"holder", "since", "expires" (ms), "held", "reason"}}, left out (with
"lockError" at the end) when the locks could not be read.

Examples:
  $ dfs ls
  $ dfs ls docs/                               names starting with docs/
  $ dfs ls --verify
  $ dfs ls --json | jq -r '.files[] | select(.state != "same") | .name'`;

export const PUT_HELP = `
What is stored, under which name:
  FILE                 its base name, or --as NAME (--as DIR/ puts it under DIR/)
  FOLDER               every file below it, as FOLDER/relative/path (--as PREFIX/ instead of
                       FOLDER/); symlinks to folders and special files are left out, with a warning
  several              each as above; --as, if given, is a prefix ending in "/"
  -                    stdin, streamed, as --as NAME (size unknown: parts of 8 MiB, up to 78 GiB)
Every name is checked before anything is sent; --dry-run only shows the plan. Several files
go --jobs at a time (default 8) with one progress line (files, bytes, speed, ETA) on a
terminal, then a summary. A file that fails does not stop the others; Ctrl-C (exit 130) aborts
the uploads in flight and says how many files were stored.
Up to 4 MiB a file goes in one request; larger files are uploaded in parts straight to
every target store (presigned URLs), 4 parts at a time, each read from disk once, so memory
stays at a few parts whatever the file size. A part is tried 3 times per store; a store that
keeps failing is dropped and reported while the others complete. On an error or Ctrl-C the
upload is aborted, so no parts are left behind (a store refusing the abort is named).
The file's modification time becomes the logical mtime: newest wins between stores. With
--to STORE, a file older than a version another store holds is refused (exit 7), since
replication would put the newer one back over it; --touch stamps it now so that it wins.

--json prints the API answer ("key", "size", "mtime", "results": one outcome per store) plus
"file", "via" (inline or multipart) and, for multipart, "multipart": {"partSize", "parts",
"uploads", "aborted", "abortFailed"}.

Examples:
  $ dfs put fileA.txt                          stored as fileA.txt on every store
  $ dfs put ~/Videos/talk.mp4 --as talks/2024.mp4
  $ dfs put notes.txt --to server1             replication copies it to the others
  $ dfs put old-draft.txt --to server1 --touch  make an older file the newest
  $ dfs put ./photos                           every file below photos/, as photos/…
  $ dfs put *.log --as logs/ --jobs 16
  $ pg_dump db | dfs put - --as backups/db.sql
  $ dfs put ./site --as www/ --dry-run
  $ dfs put -- -odd-name.txt`;

export const RM_HELP = `
Deletes NAME from every store holding it; a tombstone remembers the delete, so a store that is
down now loses its copy at the next sync instead of bringing it back. Asks first on a
terminal; anywhere else (scripts, pipes) nothing is deleted without -y.

--dry-run reads which stores hold NAME (no content) and says what would go; nothing is deleted.

--json prints the API answer: {"key", "mtime", "results": one outcome per store}.

Examples:
  $ dfs rm fileA.txt
  $ dfs rm docs/old.pdf --dry-run
  $ dfs rm docs/old.pdf -y --json`;

export const VERSION_HELP = `
Prints the version of dfs, the commit it was built from (when it runs from a git checkout),
when its bundle was built and the Node.js it runs on.

--json prints {"version", "commit", "built", "node", "platform"}.

Examples:
  $ dfs version
  $ dfs version --json | jq -r .commit`;

export const COMPLETION_HELP = `
Prints a completion script for bash or zsh: commands, subcommands and flags complete on Tab
(file names where a command takes local files). Names in the stores are not completed.

Examples:
  $ source <(dfs completion bash)              this shell only
  $ dfs completion bash > ~/.local/share/bash-completion/completions/dfs
  $ dfs completion zsh > "\${fpath[1]}/_dfs"     then start a new shell`;

export const SYNC_HELP = `
Compares every store (listings first, then metadata and bytes only where needed) and prints,
like rclone check, the counts and one line per step with its reason:
  3 matching files
  2 differences found
  1 file missing on server1
  copy    fileB.txt  server2 → server1  server2 newer (2024-05-02T… vs server1 2024-05-01T…)
  delete  old.txt    from server1       deleted at 2024-05-03T…, after the last write (…)
Then, unless --dry-run, applies the steps in batches of 100 (a progress bar on a terminal)
and prints how many were done and why any failed. The newest copy wins; deletes follow
tombstones. The server refuses (exit 7) when a store is unavailable or empty, or when the plan
would delete over half of a store: check why, then add --force.

--json prints the report {"dryRun", "counts": {"match", "differ", "missing": {store: N},
"copies", "deletes"}, "entries", "unavailable"} plus "applied": {"done", "failed",
"notAttempted", "batches"} when steps were applied.

Examples:
  $ dfs sync --dry-run                         report only (exit 4 when something differs)
  $ dfs sync
  $ dfs sync --force                           go on with a store down`;

export const WATCH_HELP = `
Prints what the servers do, one line per event, oldest first:
  13:30:05  server1 → server2  fileB.txt  replicate (modified)
Lock events name the locked store first:
  13:30:05  server1  fileB.txt  locked by ann until 2024-05-02 14:30 (editing)
  13:30:09  server1  fileB.txt  queued #3 (update by bob; locked by ann)
  13:31:00  server1  fileB.txt  applied 3/5 (unlock by ann)
  13:31:01  server1  fileB.txt  unlocked by ann (5 held update(s) applied)
Starts with the last minute (--since-start: only what happens from now on) and runs until
Ctrl-C, --count N events, or --timeout S seconds. A lost connection is retried.

--json prints each event as one JSON line: {"id", "time", "action", "key", "who", "from",
"to", "reason"}; lock actions are locked, queued, applied, unlocked, unlock-forced, expired.

Examples:
  $ dfs watch
  $ dfs watch --json --since-start | jq -c 'select(.action == "conflict")'
  $ dfs watch --count 1 --timeout 30           wait for the next event (exit 1 if none comes)
  $ dfs watch --json | jq -c 'select(.action == "queued" or .action == "applied")'`;

const FILE_ARG = `FILE is an INDEX or a NAME:
  3          a whole number: the file with # 3 in dfs ls (the whole listing, no PREFIX),
             looked up when the command runs; the file it stands for is named in the output
  fileB.txt  anything else is a name
  ./3        the file named "3" (no name starts with "./", so ./ always means a name)
  A negative index (-1), one that is not a whole number (1.5, 1e3, 0x1, +2) or one past
  the end of the listing is refused (exit 2) before anything is changed.`;

export const LOCK_HELP = `
Locks FILE at one store (--at, default the first store) for you (your token's name). While it
is locked, every write into that store's copy that is not yours (replication from another
store, dfs sync, other users' puts and deletes) is held in the lock's queue, in order; your own
writes and the other stores go on as usual. dfs unlock applies what was held. Locking a file
you hold already renews it. A lock lasts --ttl (default 1h, from 1m to 7d); an expired lock
still holds until the next reconcile applies its queue and releases it.

${FILE_ARG}
--ttl takes whole seconds (3600) or amounts with units s, m, h, d, w: 90s, 30m, 2h, 1h30m, 7d.
Someone else's lock on FILE there is refused (exit 7) with its holder; a file no store holds
is exit 3.

--json prints the lock {"key", "store", "holder", "since", "expires" (ms), "reason", "next",
"applied"} ("next" - 1 - "applied" updates are held), plus "index" when FILE was one.

Examples:
  $ dfs lock 1                                 the file dfs ls shows as #1, at the first store
  $ dfs lock docs/report.pdf --at server2 --reason "final edits" --ttl 2h
  $ dfs lock ./2024                            the file named 2024, not # 2024
  $ dfs lock fileB.txt --json | jq .expires`;

export const UNLOCK_HELP = `
Unlocks FILE: the updates held while it was locked are applied into the store, in the order
they came, then the lock goes and the stores settle as usual (newest wins). --at says which
store; by default the one store where FILE is locked.
  --force    someone else's lock: shows whose it is and asks first (exit 7 without --force)
  --discard  drops the held updates instead of applying them: shows how many and asks first
On a terminal the question is asked; anywhere else --force on someone else's lock and a
--discard that drops updates need -y. A long queue is applied by the server in steps: dfs
waits until the lock is gone (a bar on a terminal), or with --no-wait leaves it going on by
itself (dfs locks and dfs watch show it).

${FILE_ARG}
A file that is not locked (there) is exit 3.

--json prints the API's answer {"key", "store", "applied", "total", "done", "discarded"} (the
last one, once a long unlock is over) plus "holder", "forced", "waited" and "index".

Examples:
  $ dfs unlock 1
  $ dfs unlock fileB.txt --at server2
  $ dfs unlock docs/report.pdf --force          take over someone else's lock (asks)
  $ dfs unlock fileB.txt --discard -y           drop what was held, without asking
  $ dfs unlock big.bin --no-wait --json`;

export const LOCKS_HELP = `
Lists every lock: the file, the store, who holds it and since when, when it expires
("(expired)": the next reconcile applies its queue and releases it), how many updates it holds
(not applied yet; "(unlocking)" while an unlock applies them) and why.

--json prints the API answer {"locks": [{"key", "store", "holder", "since", "expires" (ms),
"reason", "next", "applied"}, …]}.

Examples:
  $ dfs locks
  $ dfs locks --json | jq -r '.locks[] | select(.holder == "ann") | .key'`;

export const TOKEN_HELP = `
Every API request needs a token; a read-only token may get, ls, watch and sync --dry-run,
a write token may do everything, including these commands. A token's name is who the journal,
tombstones and locks name for what it does. npm start makes a "local" write token and leaves
it where dfs finds it, so the first other token can be made with dfs token create.

Examples:
  $ dfs token create ann
  $ dfs token list
  $ dfs token revoke ann -y`;

export const TOKEN_CREATE_HELP = `
Makes a token: read and write by default, read-only with --read-only. The token is printed
once, alone on stdout, and cannot be read back (the server keeps only a hash of it); what to
do with it goes to stderr. NAME is 1 to 40 of a-z, 0-9 and "-", and must not be taken.

--json prints the API answer {"name", "scope", "created", "createdBy", "token"}.

Examples:
  $ dfs token create ann
  $ dfs token create dashboard --read-only
  $ DFS_TOKEN=$(dfs token create ci) dfs ls    the new token at work
  $ dfs token create ci --json | jq -r .token`;

export const TOKEN_LIST_HELP = `
Lists every token: name, scope, when it was made and by whom. Never the tokens themselves.

--json prints the API answer {"tokens": [{"name", "scope", "created", "createdBy"}, …]}.

Examples:
  $ dfs token list
  $ dfs token list --json | jq -r '.tokens[] | select(.scope == "write") | .name'`;

export const TOKEN_REVOKE_HELP = `
Revokes NAME: requests with it are refused within seconds (the API caches tokens briefly).
Asks first on a terminal; anywhere else (scripts, pipes) nothing is revoked without -y.
Revoking the token dfs itself uses works; later commands then need another.

--json prints the API answer {"revoked": NAME}.

Examples:
  $ dfs token revoke ann
  $ dfs token revoke ci -y --json`;
