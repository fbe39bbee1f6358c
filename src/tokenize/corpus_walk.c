#include "tokenize/corpus_walk.h"

#include <stdlib.h>

#include "core/progress.h"
#include "core/util.h"
#include "tokenize/work_split.h"

static int64_t range_bytes(const CorpusFiles *c, const WorkRange *r) {
    return r->end < 0 ? c->files[r->file].size : r->end - r->begin;
}

void corpus_walk(const CorpusFiles *c, const JsonlOptions *opt, double progress_every,
                 RecordFn fn, void *ctx, JsonlCounts *counts) {
    WorkRange *ranges = xmalloc((size_t)(c->n + 1) * sizeof *ranges);
    int n = work_split(c, util_world_rank(), util_world_size(), ranges);
    int64_t total = 0, done = 0;
    for (int i = 0; i < n; i++) total += range_bytes(c, &ranges[i]);
    Progress progress;
    progress_init(&progress, total, progress_every);
    *counts = (JsonlCounts){0};
    char err[1024];
    for (int i = 0; i < n; i++) {
        const WorkRange *w = &ranges[i];
        JsonlReader *r = jsonl_open(c->files[w->file].path, w->begin, w->end, opt, err,
                                    sizeof err);
        if (!r) fatal("%s", err);
        JsonlRecord rec;
        int s;
        while ((s = jsonl_next(r, &rec, err, sizeof err)) == 1) {
            fn(ctx, &rec, w->file);
            progress_update(&progress, done + jsonl_progress(r),
                            counts->records + jsonl_counts(r)->records);
        }
        if (s < 0) fatal("%s", err);
        const JsonlCounts *k = jsonl_counts(r);
        counts->records += k->records;
        counts->bad += k->bad;
        counts->empty += k->empty;
        counts->text_bytes += k->text_bytes;
        done += range_bytes(c, w);
        jsonl_close(r);
    }
    progress_finish(&progress);
    free(ranges);
}

void corpus_note_passed_over(const CorpusFiles *c) {
    if (c->compressed > 0)
        info("note: passed over %d compressed file%s in the input folders (first: %s): only "
             ".jsonl, .json and their .zst are read; decompress them, or recompress with zstd",
             c->compressed, c->compressed == 1 ? "" : "s", c->compressed_first);
}
