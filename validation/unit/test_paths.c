// Paths (io/fs/paths.c): a path's folder, the lexical form used to compare an
// export folder with the other outputs, and the checks of a folder a run
// creates and a file it appends to, on real files in a scratch folder.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fs/paths.h"

static void expect_parent(const char *path, const char *want) {
    char got[256];
    path_parent(path, got, sizeof got);
    CHECK(strcmp(got, want) == 0, "path_parent(\"%s\") = \"%s\", expected \"%s\"", path, got, want);
}

static void expect_usable(bool folder, const char *path, bool want, const char *why) {
    char err[1024] = "";
    bool ok = folder ? path_folder_usable("--x", path, err, sizeof err)
                     : path_file_usable("--x", path, err, sizeof err);
    CHECK(ok == want, "%s usable(%s) = %d, expected %d (%s): %s", folder ? "folder" : "file",
          path, ok, want, why, err);
    CHECK(ok || strncmp(err, "--x ", 4) == 0, "the reason names the option: %s", err);
}

int main(void) {
    check_begin("path_parent: trailing slashes, the root, a bare name");
    expect_parent("a/b/c", "a/b");
    expect_parent("a/b/", "a");
    expect_parent("a//b", "a/");   // the folder's own name, slashes and all, as given
    expect_parent("name", ".");
    expect_parent("/name", "/");
    expect_parent("/", "/");
    check_end();

    check_begin("path_within: lexical, './' and repeated slashes ignored, no prefix match");
    char cwd[4096];
    CHECK(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
    char abs[4200];
    snprintf(abs, sizeof abs, "%s/out/x", cwd);
    CHECK(path_within("out/x/log.jsonl", "out/x"), "a file in the folder");
    CHECK(path_within("./out//x/", "out/x"), "the folder itself, spelt otherwise");
    CHECK(path_within(abs, "out/x"), "absolute against relative");
    CHECK(!path_within("out/xy/log.jsonl", "out/x"), "out/xy is not within out/x");
    CHECK(!path_within("out", "out/x"), "a parent is not within");
    CHECK(path_within("/anything", "/"), "everything is within /");
    check_end();

    check_begin("path_folder_usable and path_file_usable on real files");
    char tmp[] = "/tmp/llama-paths.XXXXXX", p[512];
    CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    snprintf(p, sizeof p, "%s/new/deeper", tmp);
    expect_usable(true, p, true, "made by mkdir -p under a writable folder");
    snprintf(p, sizeof p, "%s/file", tmp);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL, "create %s", p);
    if (f) fclose(f);
    expect_usable(true, p, false, "a file is no folder");
    expect_usable(false, p, true, "an existing writable file");
    snprintf(p, sizeof p, "%s/file/below", tmp);
    expect_usable(true, p, false, "under a file");
    snprintf(p, sizeof p, "%s/missing/log", tmp);
    expect_usable(false, p, false, "a file's folder is not made");
    expect_usable(false, tmp, false, "a folder is no file");
    if (geteuid() != 0) {   // root writes anywhere
        snprintf(p, sizeof p, "%s/ro", tmp);
        mkdir(p, 0555);
        snprintf(p, sizeof p, "%s/ro/sub", tmp);
        expect_usable(true, p, false, "under a read-only folder");
    }
    check_end();

    check_begin("path_resolved: links followed where the path exists, '..' taken where it does not");
    char real[4096], link[600], out[8400], want[8400];
    CHECK(realpath(tmp, real) != NULL, "realpath %s", tmp);
    snprintf(p, sizeof p, "%s/dir", tmp);
    mkdir(p, 0755);
    snprintf(link, sizeof link, "%s/link", tmp);
    CHECK(symlink(p, link) == 0, "symlink");
    snprintf(p, sizeof p, "%s/link/latest", tmp);
    path_resolved(p, out, sizeof out);
    snprintf(want, sizeof want, "%s/dir/latest", real);
    CHECK(strcmp(out, want) == 0, "through a link: %s, want %s", out, want);
    snprintf(p, sizeof p, "%s/notyet/../dir/x", tmp);   // notyet made by make_dirs, then left
    path_resolved(p, out, sizeof out);
    snprintf(want, sizeof want, "%s/dir/x", real);
    CHECK(strcmp(out, want) == 0, "'..' after a missing folder: %s, want %s", out, want);
    snprintf(p, sizeof p, "%s/dir/./new//y", tmp);
    path_resolved(p, out, sizeof out);
    snprintf(want, sizeof want, "%s/dir/new/y", real);
    CHECK(strcmp(out, want) == 0, "'.' and '//' in the new part: %s, want %s", out, want);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0, "%s", cmd);
    check_end();
    return check_exit_code();
}
