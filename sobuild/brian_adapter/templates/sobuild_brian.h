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
// Kept lean: header parsing dominates the build of small kernels. Brian2's dynamic arrays
// and spike queue (std::vector inside) and the containers of synapse creation live in the
// runtime support library (sobuild_support.cc), built once per toolchain and kept in the
// cache as an artifact of its own; kernels reach it through the table `runtime` below.

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

// Element types of Brian2's dynamic arrays (bool is stored as char).
enum { TYPE_DOUBLE, TYPE_FLOAT, TYPE_INT32, TYPE_INT64, TYPE_CHAR, TYPE_COUNT };
template <typename T> struct type_code;
template <> struct type_code<double> { static const int value = TYPE_DOUBLE; };
template <> struct type_code<float> { static const int value = TYPE_FLOAT; };
template <> struct type_code<int32_t> { static const int value = TYPE_INT32; };
template <> struct type_code<int64_t> { static const int value = TYPE_INT64; };
template <> struct type_code<char> { static const int value = TYPE_CHAR; };

// What the support library offers, per element type where it matters: DynamicArray1D<T>,
// DynamicArray2D<T>, CSpikeQueue, a set of ints (sampling without replacement) and the
// numbering of multiple synapses between one pair. Slot 3 of an argument block points here.
struct runtime {
    size_t (*size_1d[TYPE_COUNT])(void* array);
    void* (*data_1d[TYPE_COUNT])(void* array);
    void (*resize_1d[TYPE_COUNT])(void* array, size_t size);
    size_t (*rows_2d[TYPE_COUNT])(void* array);
    size_t (*stride_2d[TYPE_COUNT])(void* array);
    void* (*data_2d[TYPE_COUNT])(void* array);
    void (*resize_2d[TYPE_COUNT])(void* array, size_t rows, size_t cols);
    void (*queue_push)(void* queue, int32_t* spikes, int count);
    const int32_t* (*queue_peek)(void* queue, size_t* count);
    void (*queue_advance)(void* queue);
    void* (*int_set_new)();
    void (*int_set_free)(void* set);
    int (*int_set_insert)(void* set, int value);  // 1 if it was not there yet
    void (*int_set_take_sorted)(void* set, int* out);  // its values in order; then empty
    void (*number_synapses)(const int32_t* pre, const int32_t* post, size_t count,
                            int32_t* numbers);
};

// Brian2's DynamicArray1D<T>, as kernels see it: the object's address and the table.
template <typename T> class dynamic_array_1d {
    const runtime* rt_;
    void* array_;
public:
    dynamic_array_1d(const runtime* rt, void* array) : rt_(rt), array_(array) {}
    const dynamic_array_1d* operator->() const { return this; }  // used as a pointer
    size_t size() const { return rt_->size_1d[type_code<T>::value](array_); }
    T* get_data_ptr() const { return static_cast<T*>(rt_->data_1d[type_code<T>::value](array_)); }
    void resize(size_t size) const { rt_->resize_1d[type_code<T>::value](array_, size); }
};

// Brian2's DynamicArray2D<T>: rows of stride() elements from get_data_ptr().
template <typename T> class dynamic_array_2d {
    const runtime* rt_;
    void* array_;
public:
    dynamic_array_2d(const runtime* rt, void* array) : rt_(rt), array_(array) {}
    const dynamic_array_2d* operator->() const { return this; }  // used as a pointer
    size_t rows() const { return rt_->rows_2d[type_code<T>::value](array_); }
    size_t stride() const { return rt_->stride_2d[type_code<T>::value](array_); }
    T* get_data_ptr() const { return static_cast<T*>(rt_->data_2d[type_code<T>::value](array_)); }
    void resize(size_t rows, size_t cols) const {
        rt_->resize_2d[type_code<T>::value](array_, rows, cols);
    }
};

// Brian2's CSpikeQueue: peek() gives the synapses due now and their count.
class spike_queue {
    const runtime* rt_;
    void* queue_;
public:
    spike_queue(const runtime* rt, void* queue) : rt_(rt), queue_(queue) {}
    const spike_queue* operator->() const { return this; }  // used as a pointer
    void push(int32_t* spikes, int count) const { rt_->queue_push(queue_, spikes, count); }
    const int32_t* peek(size_t* count) const { return rt_->queue_peek(queue_, count); }
    void advance() const { rt_->queue_advance(queue_); }
};

// A set of ints in the support library, freed with its scope.
class int_set {
    const runtime* rt_;
    void* set_;
    int_set(const int_set&);
    int_set& operator=(const int_set&);
public:
    explicit int_set(const runtime* rt) : rt_(rt), set_(rt->int_set_new()) {}
    ~int_set() { rt_->int_set_free(set_); }
    bool insert(int value) { return rt_->int_set_insert(set_, value) != 0; }
    void take_sorted(int* out) { rt_->int_set_take_sorted(set_, out); }
};

// A growing array of trivially copyable values (std::vector's push_back without <vector>).
template <typename T> class buffer {
    T* data_;
    size_t size_, capacity_;
    buffer(const buffer&);
    buffer& operator=(const buffer&);
public:
    buffer() : data_(0), size_(0), capacity_(0) {}
    ~buffer() { std::free(data_); }
    void reserve(size_t capacity) {
        if (capacity <= capacity_) return;
        T* grown = static_cast<T*>(std::realloc(data_, capacity * sizeof(T)));
        if (!grown) throw std::bad_alloc();
        data_ = grown;
        capacity_ = capacity;
    }
    void push_back(T value) {
        if (size_ == capacity_) reserve(capacity_ ? 2 * capacity_ : 64);
        data_[size_++] = value;
    }
    T* data() { return data_; }
    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
};

}  // namespace sobuild_brian

#define SOBUILD_CATCH \
    catch (const sobuild_brian::error& _e) { \
        return sobuild_brian::report(_args[0], _e.message, _e.code); \
    } catch (const std::exception& _e) { \
        return sobuild_brian::report(_args[0], _e.what(), sobuild_brian::RUNTIME_ERROR); \
    }

#endif
