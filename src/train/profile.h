// --profile's report: where this rank's measured steps went, op by op
// (backend/ops_profile.h), with the exposed communication, the loader and
// the rest of the host's time; printed as a table and, with --log, one JSON
// line per row.  The planner's calibration reads the same rates.
#ifndef LLAMA_PROFILE_H
#define LLAMA_PROFILE_H

#include "fs/logfile.h"

typedef struct {
    int steps;             // measured steps
    double step_seconds;   // their wall time
    double comm_seconds;   // inside communication calls and waits (comm_dev_busy_seconds)
    double data_seconds;   // reading and assembling the batches
} ProfileTotals;

// Prints the table (call on one rank; log may be NULL).
void profile_report(const ProfileTotals *p, LogFile *log);

#endif
