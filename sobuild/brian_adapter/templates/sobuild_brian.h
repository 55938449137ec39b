// Runtime support of sobuild's Brian2 kernels: included by every kernel (passed to the
// build by content, so it is part of every kernel's key).
//
// A kernel is `int run(void* const* _args)`: slot 0 of the argument block is an error
// buffer, slots 1 and 2 an output array and its element count (group_get templates),
// the rest the code object's arrays, dynamic-array objects and constants. A kernel
// returns 0, or an error code after writing its message to the error buffer.
#ifndef SOBUILD_BRIAN_H
#define SOBUILD_BRIAN_H

#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>

#include "brianlib/common_math.h"
#include "stdint_compat.h"
// Kept lean: header parsing dominates the build of small kernels. Templates that need
// more include it themselves (sobuild_dynamic_array.h, spikequeue.h, <set>, <map>).

// Generated code calls abs() unqualified on floating-point values too.
using std::abs;

namespace sobuild_brian {

const int ERROR_BUFFER_SIZE = 1024;
const int INDEX_ERROR = 1;
const int RUNTIME_ERROR = 2;

// numpy's bitgen_t (numpy/random/bitgen.h): the interface of a numpy BitGenerator.
struct bitgen_t {
    void* state;
    uint64_t (*next_uint64)(void* st);
    uint32_t (*next_uint32)(void* st);
    double (*next_double)(void* st);
    uint64_t (*next_raw)(void* st);
};

// An error a kernel reports to Python (thrown by value, caught in run()).
struct error {
    int code;
    char message[ERROR_BUFFER_SIZE];
};

inline error make_error(int code, const char* fmt, va_list ap) {
    error e;
    e.code = code;
    std::vsnprintf(e.message, sizeof e.message, fmt, ap);
    return e;
}

inline error index_error(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    error e = make_error(INDEX_ERROR, fmt, ap);
    va_end(ap);
    return e;
}

inline int report(void* buffer, const char* message, int code) {
    std::snprintf(static_cast<char*>(buffer), ERROR_BUFFER_SIZE, "%s", message);
    return code;
}

// numpy's aug_bitgen_t (numpy/random/src/legacy/legacy-distributions.h): what a legacy
// RandomState draws from, with the Gaussian it keeps for its next normal.
struct legacy_state {
    bitgen_t* bit_generator;
    int has_gauss;
    double gauss;
};

// Refill a buffer the way numpy.random.rand(n) does: the same numbers, from numpy's
// global RandomState (its MT19937 bit generator), so seed() and the random-state calls
// of Brian2's RuntimeDevice cover them.
inline void fill_uniform(uint64_t state, double* buffer, int n) {
    bitgen_t* bg = reinterpret_cast<legacy_state*>(state)->bit_generator;
    for (int i = 0; i < n; i++) buffer[i] = bg->next_double(bg->state);
}

// numpy's legacy_gauss: the cached Gaussian if there is one (cleared to 0.0 once used),
// else a new pair by the polar method, one returned and the other kept.
inline double legacy_gauss(legacy_state* s) {
    if (s->has_gauss) {
        const double cached = s->gauss;
        s->has_gauss = 0;
        s->gauss = 0.0;
        return cached;
    }
    bitgen_t* bg = s->bit_generator;
    double x1, x2, r2;
    do {
        x1 = 2.0 * bg->next_double(bg->state) - 1.0;
        x2 = 2.0 * bg->next_double(bg->state) - 1.0;
        r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1.0 || r2 == 0.0);
    const double f = std::sqrt(-2.0 * std::log(r2) / r2);
    s->gauss = f * x1;
    s->has_gauss = 1;
    return f * x2;
}

// The same for numpy.random.randn(n): n calls of legacy_gauss, so the RandomState's
// cached Gaussian comes first and the spare of the last pair is cached, as in numpy.
inline void fill_normal(uint64_t state, double* buffer, int n) {
    legacy_state* s = reinterpret_cast<legacy_state*>(state);
    for (int i = 0; i < n; i++) buffer[i] = legacy_gauss(s);
}

}  // namespace sobuild_brian

#define SOBUILD_CATCH \
    catch (const sobuild_brian::error& _e) { \
        return sobuild_brian::report(_args[0], _e.message, _e.code); \
    } catch (const std::exception& _e) { \
        return sobuild_brian::report(_args[0], _e.what(), sobuild_brian::RUNTIME_ERROR); \
    }

#endif
