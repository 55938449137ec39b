// The time-step loop of a Brian2 network in C: sobuild's step_loop.py gives it the network's
// schedule and runs it from a clock's advance. Built once per toolchain, as the clock kernel.
//
// It runs whole steps, each as Brian2's Network.run does one: find the clocks that step
// next (the first clock of least t, in the order of the network's set of clocks, and every
// clock at the same time within Clock.epsilon_dt of the smaller dt), stop if that clock is
// at the end of its interval, run the kernels of the objects on those clocks in the
// network's order, advance those clocks (timestep + 1, t = timestep * dt). It returns at the
// top of a step, before running any of it, when Python must run that step: the end of the
// interval, an object that is not a sobuild kernel on a stepping clock, a clock that would
// pass its end (Brian2 raises StopIteration there), or the wall-clock deadline (reports,
// the device's maximum run time, stop() from elsewhere, signals). A kernel's non-zero
// result stops the loop at once; the index of its call goes to Python, which raises.
#include <stdint.h>
#include <time.h>

typedef int (*sobuild_kernel)(void* const*);

static const double EPSILON_DT = 1e-4;  // brian2.Clock.epsilon_dt
static const int64_t STEPS_BETWEEN_DEADLINE_CHECKS = 16;

static double wall_time()
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);  // Python's time.time()
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

int run(void* const* args)
{
    void* const* funcs = (void* const*)args[0];      // per call: the kernel, or NULL: Python
    void* const* argblocks = (void* const*)args[1];  // per call: the kernel's argument block
    const int32_t* call_clock = (const int32_t*)args[2];
    const int64_t n_calls = ((const int64_t*)args[3])[0];
    const int64_t n_clocks = ((const int64_t*)args[3])[1];
    int64_t* const* timestep = (int64_t* const*)args[4];
    double* const* t = (double* const*)args[5];
    double* const* dt = (double* const*)args[6];
    const int64_t* i_end = (const int64_t*)args[7];
    const double deadline = ((const double*)args[8])[0];
    int64_t* failed_call = (int64_t*)args[9];
    char* stepping = (char*)args[10];  // per clock, scratch: steps now
    char* needs_python = (char*)args[11];  // per clock, scratch

    for (int64_t c = 0; c < n_clocks; c++)
        needs_python[c] = 0;
    for (int64_t i = 0; i < n_calls; i++)
        if (funcs[i] == 0)
            needs_python[call_clock[i]] = 1;

    for (int64_t step = 0;; step++)
    {
        if (step % STEPS_BETWEEN_DEADLINE_CHECKS == 0 && wall_time() > deadline)
            return 0;
        int64_t first = 0;  // Network._nextclocks: min() keeps the first of the least t
        for (int64_t c = 1; c < n_clocks; c++)
            if (*t[c] < *t[first])
                first = c;
        if (*timestep[first] >= i_end[first])
            return 0;
        for (int64_t c = 0; c < n_clocks; c++)
        {
            const double smaller_dt = *dt[c] < *dt[first] ? *dt[c] : *dt[first];
            const double gap = *t[c] > *t[first] ? *t[c] - *t[first] : *t[first] - *t[c];
            stepping[c] = c == first || gap / smaller_dt < EPSILON_DT;
            if (stepping[c] && (needs_python[c] || *timestep[c] + 1 > i_end[c]))
                return 0;
        }
        for (int64_t i = 0; i < n_calls; i++)
        {
            if (!stepping[call_clock[i]])
                continue;
            const int code = ((sobuild_kernel)funcs[i])((void* const*)argblocks[i]);
            if (code)
            {
                *failed_call = i;
                return code;
            }
        }
        for (int64_t c = 0; c < n_clocks; c++)
        {
            if (!stepping[c])
                continue;
            *timestep[c] += 1;
            *t[c] = (double)*timestep[c] * *dt[c];
        }
    }
}
