#!/usr/bin/env python3
"""A model of the 1F1B schedule (src/parallel/pipeline.c) on the CUDA backend's streams,
to check it cannot deadlock under NCCL's semantics (cuda/comm_nccl.cu).

Each rank has a host program (the calls pipeline.c makes) and device streams:
the compute stream and one stream per point-to-point communicator.  As in
src/parallel/grid.c, every link of the pipeline ring (stage s to s + 1 mod pp)
has a communicator for activations and one for gradients; the negative
controls share communicators instead (one per direction, or one for all).  Posting a
transfer records an event on the compute stream that the communicator's stream
waits for, then queues the send or receive there; a send and its receive
complete only when both are at the head of their streams (rendezvous, the
worst case); waiting on a request makes the compute stream wait.  The host
blocks where the backend synchronises (a batch's ids when copies are
synchronous, the loss of each micro-batch on the last stage, the end of the
step) and at the step's MPI reduction.  Prints PASS/FAIL lines (and runs a
negative control: one communicator for both directions must deadlock)."""
import collections
import itertools
import sys


def items(pp, M, V, forward):
    """(micro-batch, chunk) of each forward (backward) pass, as schedule_item orders them."""
    for k in range(M * V):
        if V == 1:
            yield (k, 0)
        elif M % pp:
            yield (k // V, k % V)
        else:
            group, i = divmod(k, pp * V)
            chunk = i // pp
            yield (group * pp + i % pp, chunk if forward else V - 1 - chunk)


def program(pp, rank, M, sync_load, act, grad, V=1, links=True):
    """Host actions of one optimizer step of rank `rank` (pipeline_train), V chunks per rank."""
    P = []
    total = M * V
    warm = min(pp - rank - 1 if V == 1 else 2 * (pp - rank - 1) + (V - 1) * pp, total)
    n_slots = min(warm + 1, total)
    first, last = rank == 0, rank == pp - 1
    nxt, prv = (rank + 1) % pp, (rank - 1) % pp
    in_slot, act_send, grad_send = [None] * n_slots, [None] * n_slots, [None]
    F, B = list(items(pp, M, V, True)), list(items(pp, M, V, False))
    ids = itertools.count()

    def link(comm, lower):
        """The communicator of `comm`'s kind on the link from stage `lower` to the next."""
        return f"{comm}{lower}" if links else comm

    def tag(mb, chunk):
        return 2 * (mb * V + chunk)

    def post(comm, kind, peer, tag):
        r = next(ids)
        P.append(("post", comm, kind, peer, tag, r))
        return r

    def wait(r):
        if r is not None:
            P.append(("wait", r))

    def forward(k):
        mb, c = F[k]
        slot = in_slot.index(None)
        in_slot[slot] = (mb, c)
        r = None if first and c == 0 else post(link(act, prv), "recv", prv, tag(mb, c))
        wait(act_send[slot])
        act_send[slot] = None
        if sync_load:
            P.append(("hostsync",))
        wait(r)
        P.append(("compute",))
        if last and c == V - 1:
            P.append(("compute",))
            P.append(("hostsync",))   # ops->sum of the losses
        else:
            act_send[slot] = post(link(act, rank), "send", nxt,
                                  tag(mb, c + 1 if last else c))

    def backward(k):
        mb, c = B[k]
        r = None if last and c == V - 1 else post(link(grad, rank), "recv", nxt, tag(mb, c) + 1)
        wait(grad_send[0])
        grad_send[0] = None
        wait(r)
        in_slot[in_slot.index((mb, c))] = None
        P.append(("compute",))
        if not (first and c == 0):
            grad_send[0] = post(link(grad, prv), "send", prv,
                                tag(mb, c - 1 if first else c) + 1)

    for k in range(warm):
        forward(k)
    for k in range(total - warm):
        forward(warm + k)
        backward(k)
    for k in range(total - warm, total):
        backward(k)
    for r in act_send + grad_send:
        wait(r)
    P += [("hostsync",), ("barrier",)]
    return P


def deadlocks(pp, M, sync_load, act="act", grad="grad", steps=2, V=1, links=True):
    progs = [sum((program(pp, r, M, sync_load, act, grad, V, links) for _ in range(steps)), [])
             for r in range(pp)]
    host = [0] * pp
    streams = collections.defaultdict(list)   # (rank, stream) → queued work
    head = collections.defaultdict(int)       # (rank, stream) → index of the next item
    where = {}
    at_barrier = set()
    progress = True
    while progress:
        progress = False
        for r in range(pp):
            while host[r] < len(progs[r]):
                a = progs[r][host[r]]
                c = streams[(r, "c")]
                if a[0] == "compute":
                    c.append(("run",))
                elif a[0] == "post":
                    _, comm, kind, peer, tag, rid = a
                    c.append(("run",))
                    s = streams[(r, comm)]
                    s.append(("wait", (r, "c"), len(c) - 1))
                    s.append((kind, peer, tag))
                    where[(r, rid)] = ((r, comm), len(s) - 1)   # ids restart each step:
                                                                # a wait follows its post
                elif a[0] == "wait":
                    key, idx = where[(r, a[1])]
                    c.append(("wait", key, idx))
                elif a[0] == "hostsync":
                    if head[(r, "c")] < len(c):
                        break
                elif a[0] == "barrier":
                    at_barrier.add(r)
                    if len(at_barrier) < pp:
                        break
                    at_barrier.clear()
                    for q in range(pp):
                        if q != r and progs[q][host[q]][0] == "barrier":
                            host[q] += 1
                host[r] += 1
                progress = True
        for key, s in list(streams.items()):
            while head[key] < len(s):
                it = s[head[key]]
                if it[0] == "run":
                    head[key] += 1
                elif it[0] == "wait" and head[it[1]] > it[2]:
                    head[key] += 1
                elif it[0] in ("send", "recv"):
                    r, comm = key
                    peer_key = (it[1], comm)
                    ps = streams[peer_key]
                    other = "recv" if it[0] == "send" else "send"
                    if head[peer_key] < len(ps) and ps[head[peer_key]] == (other, r, it[2]):
                        head[key] += 1
                        head[peer_key] += 1
                    else:
                        break
                else:
                    break
                progress = True
    done = all(host[r] == len(progs[r]) for r in range(pp)) and \
        all(head[k] == len(s) for k, s in streams.items())
    return not done


def main():
    ok = True

    def check(label, cases, expect_deadlock, **kw):
        nonlocal ok
        stuck = [c for c in cases if deadlocks(*c, **kw)]
        if bool(stuck) == expect_deadlock:
            what = f"deadlocks in {len(stuck)} of" if stuck else "no deadlock in"
            print(f"PASS {label}: {what} {len(cases)} schedules")
        else:
            ok = False
            what = f"deadlock at (pp, micro-batches, sync) = {stuck[:5]}" if stuck else \
                "no deadlock anywhere"
            print(f"FAIL {label}: {what}")

    plain = [(pp, M, s) for pp in range(2, 7) for M in range(1, 10) for s in (False, True)]
    inter = [(pp, M, s) for pp in range(2, 6) for M in range(pp, 3 * pp + 1, pp)
             for s in (False, True)]
    check("1F1B on NCCL streams, a link's two communicators (pp 2-6, 1-9 micro-batches, "
          "host-synchronous or staged batch copies)", plain, False)
    for V in (2, 3):
        check(f"interleaved 1F1B (vpp {V}) on NCCL streams, a link's two communicators "
              "(pp 2-5, pp to 3·pp micro-batches)", inter, False, V=V)
    # Negative controls: the model must see the deadlocks that shared streams make.
    check("control: one communicator per direction, interleaved (vpp 2) -- two stages' "
          "sends meet head to head", inter, True, V=2, links=False)
    check("control: one communicator for both directions, 1F1B", plain, True,
          act="one", grad="one", links=False)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
