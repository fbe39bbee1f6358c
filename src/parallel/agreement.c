#include "parallel/agreement.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

// The first line where a and b differ, copied (without its newline) into
// la and lb ("(no more lines)" past the end of a text).
static void first_difference(const char *a, const char *b, char *la, char *lb, size_t len) {
    while (*a && *b) {
        size_t na = strcspn(a, "\n"), nb = strcspn(b, "\n");
        if (na != nb || memcmp(a, b, na) != 0) break;
        a += na + (a[na] == '\n');
        b += nb + (b[nb] == '\n');
    }
    if (!*a) a = "(no more lines)";
    if (!*b) b = "(no more lines)";
    snprintf(la, len, "%.*s", (int)strcspn(a, "\n"), a);
    snprintf(lb, len, "%.*s", (int)strcspn(b, "\n"), b);
}

bool agree_same_u64(const Comm *c, uint64_t value) {
    uint64_t seen[2] = {value, ~value};   // the largest, and the smallest negated
    comm_allreduce(c, seen, 2, DTYPE_U64, REDUCE_MAX);
    return seen[0] == value && seen[1] == ~value;   // false on every rank when any differs
}

void agree_on_text(const Comm *c, const char *what, const char *text, const char *remedy) {
    if (c->size == 1) return;
    uint64_t mine = fnv1a(text), ref = mine;
    comm_broadcast(c, &ref, 1, DTYPE_U64, 0);
    int32_t differs = mine != ref, any = differs;
    comm_allreduce(c, &any, 1, DTYPE_I32, REDUCE_MAX);
    if (!any) return;
    uint64_t n = strlen(text) + 1;   // rank 0's text to every rank, to name the line
    comm_broadcast(c, &n, 1, DTYPE_U64, 0);
    char *ref_text = xmalloc(n);
    if (c->rank == 0) memcpy(ref_text, text, n);
    comm_broadcast(c, ref_text, n, DTYPE_U8, 0);
    char message[2048] = "", la[512], lb[512];
    if (differs) {
        first_difference(text, ref_text, la, lb, sizeof la);
        snprintf(message, sizeof message, "%s differ between ranks: rank %d has '%s' where rank 0 "
                 "has '%s'; %s", what, c->rank, la, lb, remedy);
    }
    free(ref_text);
    comm_agree(c, !differs, message);
}

// Rank 0's probe: a file in dir holding a text no other run writes.
static bool probe_write(const char *what, const char *dir, const char *host, char probe[4200],
                        char text[160], char *err, int len) {
    snprintf(text, 160, "%s pid %ld on %.63s at %.6f", util_program(), (long)getpid(), host,
             now_seconds());
    snprintf(probe, 4200, "%s/.shared-probe-%ld", dir, (long)getpid());
    FILE *f = fopen(probe, "w");
    bool ok = f && fputs(text, f) >= 0;
    if (f) ok = fclose(f) == 0 && ok;
    if (!ok) {
        snprintf(err, len, "%s %s: cannot write in it: %s", what, dir, strerror(errno));
        unlink(probe);
    }
    return ok;
}

void agree_folder_shared(const Comm *c, const char *what, const char *dir, const char *why) {
    char probe[4200] = "", text[160] = "", seen[160] = "", err[8192] = "";
    char host[64] = "", host0[64] = "";
    gethostname(host, sizeof host - 1);
    bool ok = c->rank != 0 || probe_write(what, dir, host, probe, text, err, sizeof err);
    comm_agree(c, ok, err);
    if (c->rank == 0) memcpy(host0, host, sizeof host0);
    comm_broadcast(c, host0, sizeof host0, DTYPE_U8, 0);
    comm_broadcast(c, probe, sizeof probe, DTYPE_U8, 0);
    comm_broadcast(c, text, sizeof text, DTYPE_U8, 0);
    FILE *f = fopen(probe, "r");
    ok = f && fgets(seen, sizeof seen, f) && strcmp(seen, text) == 0;
    if (f) fclose(f);
    if (!ok) {
        snprintf(err, sizeof err, "%s %s: rank %d (host %s) does not see the file rank 0 (host "
                 "%s) wrote there (%s%s): %s", what, dir, c->rank, host, host0, probe,
                 f ? ", another file by that name" : ": no such file", why);
    }
    comm_barrier(c);   // every rank has read it
    if (c->rank == 0) unlink(probe);
    comm_agree(c, ok, err);
}
