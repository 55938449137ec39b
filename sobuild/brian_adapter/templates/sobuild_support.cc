// The runtime support library of sobuild's Brian2 kernels: Brian2's DynamicArray1D/2D and
// CSpikeQueue (the very classes of Brian2's own extension, from its headers), a set of ints
// and the numbering of multiple synapses, behind the table `sobuild_brian::runtime`.
// Built once per toolchain and kept in the cache as an artifact of its own
// (support_library.py); kernels then parse no container header.
#define SOBUILD_PCH 0
#include "sobuild_brian.h"
#include "sobuild_dynamic_array.h"
#include "spikequeue.h"
#include <map>
#include <set>
#include <utility>
#include <vector>

namespace {

template <typename T> size_t size_1d(void* a) { return static_cast<DynamicArray1D<T>*>(a)->size(); }
template <typename T> void* data_1d(void* a) {
    return static_cast<DynamicArray1D<T>*>(a)->get_data_ptr();
}
template <typename T> void resize_1d(void* a, size_t n) {
    static_cast<DynamicArray1D<T>*>(a)->resize(n);
}
template <typename T> size_t rows_2d(void* a) { return static_cast<DynamicArray2D<T>*>(a)->rows(); }
template <typename T> size_t stride_2d(void* a) {
    return static_cast<DynamicArray2D<T>*>(a)->stride();
}
template <typename T> void* data_2d(void* a) {
    return static_cast<DynamicArray2D<T>*>(a)->get_data_ptr();
}
template <typename T> void resize_2d(void* a, size_t rows, size_t cols) {
    static_cast<DynamicArray2D<T>*>(a)->resize(rows, cols);
}

void queue_push(void* q, int32_t* spikes, int count) {
    static_cast<CSpikeQueue*>(q)->push(spikes, count);
}
const int32_t* queue_peek(void* q, size_t* count) {
    std::vector<int32_t>* due = static_cast<CSpikeQueue*>(q)->peek();
    *count = due->size();
    return due->data();
}
void queue_advance(void* q) { static_cast<CSpikeQueue*>(q)->advance(); }

void* int_set_new() { return new std::set<int>(); }
void int_set_free(void* s) { delete static_cast<std::set<int>*>(s); }
int int_set_insert(void* s, int value) {
    return static_cast<std::set<int>*>(s)->insert(value).second ? 1 : 0;
}
void int_set_take_sorted(void* s, int* out) {
    std::set<int>* set = static_cast<std::set<int>*>(s);
    for (std::set<int>::const_iterator it = set->begin(); it != set->end(); ++it) *out++ = *it;
    set->clear();
}

// The number of each synapse among those between the same pair, in order (Brian2's
// multisynaptic index).
void number_synapses(const int32_t* pre, const int32_t* post, size_t count, int32_t* numbers) {
    std::map<std::pair<int32_t, int32_t>, int32_t> seen;
    for (size_t i = 0; i < count; i++) numbers[i] = seen[std::make_pair(pre[i], post[i])]++;
}

#define SOBUILD_PER_TYPE(f) {f<double>, f<float>, f<int32_t>, f<int64_t>, f<char>}

const sobuild_brian::runtime table = {
    SOBUILD_PER_TYPE(size_1d), SOBUILD_PER_TYPE(data_1d), SOBUILD_PER_TYPE(resize_1d),
    SOBUILD_PER_TYPE(rows_2d), SOBUILD_PER_TYPE(stride_2d), SOBUILD_PER_TYPE(data_2d),
    SOBUILD_PER_TYPE(resize_2d),
    queue_push, queue_peek, queue_advance,
    int_set_new, int_set_free, int_set_insert, int_set_take_sorted,
    number_synapses,
};

}  // namespace

// Writes the table's address where slot 0 points.
int run(void* const* _args) {
    *static_cast<const void**>(_args[0]) = &table;
    return 0;
}
