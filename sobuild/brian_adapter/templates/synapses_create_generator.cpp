{# USES_VARIABLES { _synaptic_pre, _synaptic_post, rand, N,
                 N_incoming, N_outgoing, N_pre, N_post, _source_offset, _target_offset } #}
{# WRITES_TO_READ_ONLY_VARIABLES { _synaptic_pre, _synaptic_post, N, N_incoming, N_outgoing } #}
{# ITERATE_ALL { _idx } #}
{% extends 'common_group.cpp' %}

{% block maincode %}
    {% macro invalid_index() -%}
{
    {% if skip_if_invalid %}
    continue;
    {% else %}
    throw sobuild_brian::index_error(
        "index {{ result_index }}=%ld outside allowed range from 0 to %ld",
        _{{ result_index }}, (long)_{{ result_index_size }} - 1);
    {% endif %}
}
    {%- endmacro %}
    {# For a connect call j='k+i for k in range(0, N_post, 2) if k+i < N_post'
       "j" is the "result index" (and "_post_idx" the "result index array", etc.),
       "i" the "outer index" (and "_pre_idx" the "outer index array", etc.),
       "k" the inner variable. Each code block gets a scope of its own (they declare
       their variables); the values needed later are copied to outer variables. #}
    const size_t _N_pre = {{ constant_or_scalar('N_pre', variables['N_pre']) }};
    const size_t _N_post = {{ constant_or_scalar('N_post', variables['N_post']) }};
    {{ _dynamic_N_incoming_ptr }}->resize(_N_post + _target_offset);
    {{ _dynamic_N_outgoing_ptr }}->resize(_N_pre + _source_offset);
    const size_t _old_size = {{ _dynamic__synaptic_pre_ptr }}->size();
    sobuild_brian::buffer<int32_t> _new_pre, _new_post;
    size_t _raw_pre_idx, _raw_post_idx;

    // scalar code
    const size_t _vectorisation_idx = -1;
    {{ scalar_code['setup_iterator'] | autoindent }}
    {{ scalar_code['generator_expr'] | autoindent }}
    {{ scalar_code['create_cond'] | autoindent }}
    {{ scalar_code['update'] | autoindent }}

    for (size_t _{{ outer_index }} = 0; _{{ outer_index }} < _{{ outer_index_size }}; _{{ outer_index }}++)
    {
        bool __cond, _cond;
        _raw{{ outer_index_array }} = _{{ outer_index }} + {{ outer_index_offset }};
        {% if not result_index_condition %}
        {
            {{ vector_code['create_cond'] | autoindent }}
            __cond = _cond;
        }
        _cond = __cond;
        if (!_cond) continue;
        {% endif %}
        long _uiter_low;
        long _uiter_high;
        long _uiter_step;
        {% if iterator_func == 'sample' %}
        long _uiter_size = 0;
        double _uiter_p = 0;
        {% endif %}
        {
            {{ vector_code['setup_iterator'] | autoindent }}
            _uiter_low = _iter_low;
            _uiter_high = _iter_high;
            _uiter_step = _iter_step;
            {% if iterator_func == 'sample' %}
            {% if iterator_kwds['sample_size'] == 'fixed' %}
            _uiter_size = _iter_size;
            {% else %}
            _uiter_p = _iter_p;
            {% endif %}
            {% endif %}
        }
        {% if iterator_func == 'range' %}
        for (long {{ inner_variable }} = _uiter_low; {{ inner_variable }} < _uiter_high; {{ inner_variable }} += _uiter_step)
        {
        {% elif iterator_func == 'sample' %}
        const int _iter_sign = _uiter_step > 0 ? 1 : -1;
        {% if iterator_kwds['sample_size'] == 'fixed' %}
        sobuild_brian::int_set _selected_set(_rt);
        sobuild_brian::buffer<int> _selected;
        size_t _selected_it = 0;
        int _n_selected = 0;
        int _n_dealt_with = 0;
        int _n_total;
        if (_uiter_step > 0)
            _n_total = (_uiter_high - _uiter_low - 1) / _uiter_step + 1;
        else
            _n_total = (_uiter_low - _uiter_high - 1) / -_uiter_step + 1;
        // Value determined by benchmarking, see github PR #1280
        const bool _selection_algo = 1.0 * _uiter_size / _n_total > 0.06;
        if (_uiter_size > _n_total)
        {
            {% if skip_if_invalid %}
            _uiter_size = _n_total;
            {% else %}
            throw sobuild_brian::index_error(
                "Requested sample size %ld is bigger than the population size %d.",
                _uiter_size, _n_total);
            {% endif %}
        } else if (_uiter_size < 0)
        {
            {% if skip_if_invalid %}
            continue;
            {% else %}
            throw sobuild_brian::index_error(
                "Requested sample size %ld is negative.", _uiter_size);
            {% endif %}
        } else if (_uiter_size == 0)
            continue;
        long {{ inner_variable }};
        if (_selection_algo)
        {
            {{ inner_variable }} = _uiter_low - _uiter_step;
        } else
        {
            // For the tracking algorithm, we have to first create all values
            // to make sure they will be iterated in sorted order
            while (_n_selected < _uiter_size)
            {
                int _r = (int)(_rand(_vectorisation_idx) * _n_total);
                while (!_selected_set.insert(_r))
                    _r = (int)(_rand(_vectorisation_idx) * _n_total);
                _n_selected++;
            }
            _n_selected = 0;
            _selected.reserve(_uiter_size);
            _selected_set.take_sorted(_selected.data());
            _selected_it = 0;
        }
        while (_n_selected < _uiter_size)
        {
            if (_selection_algo)
            {
                // Selection sampling technique (Knuth, TAOCP Vol 2, 3.4.2)
                {{ inner_variable }} += _uiter_step;
                _n_dealt_with++;
                const double _U = _rand(_vectorisation_idx);
                if ((_n_total - _n_dealt_with) * _U >= _uiter_size - _n_selected)
                    continue;
            } else
            {
                {{ inner_variable }} = _uiter_low + _selected.data()[_selected_it++] * _uiter_step;
            }
            _n_selected++;
        {% else %}
        if (_uiter_p == 0) continue;
        const bool _jump_algo = _uiter_p < 0.25;
        double _log1p;
        if (_jump_algo)
            _log1p = log(1 - _uiter_p);
        else
            _log1p = 1.0;  // will be ignored
        const double _pconst = 1.0 / _log1p;
        for (long {{ inner_variable }} = _uiter_low; _iter_sign * {{ inner_variable }} < _iter_sign * _uiter_high; {{ inner_variable }} += _uiter_step)
        {
            if (_jump_algo) {
                const double _r = _rand(_vectorisation_idx);
                if (_r == 0.0) break;
                const int _jump = floor(log(_r) * _pconst) * _uiter_step;
                {{ inner_variable }} += _jump;
                if (_iter_sign * {{ inner_variable }} >= _iter_sign * _uiter_high) continue;
            } else {
                if (_rand(_vectorisation_idx) >= _uiter_p) continue;
            }
        {% endif %}
        {% endif %}
            long __{{ result_index }}, _{{ result_index }}, {{ outer_index_array }}, _{{ outer_index_array }};
            {
                {{ vector_code['generator_expr'] | autoindent }}
                __{{ result_index }} = _{{ result_index }};
                _{{ outer_index_array }} = {{ outer_index_array }};
            }
            _{{ result_index }} = __{{ result_index }};
            {{ outer_index_array }} = _{{ outer_index_array }};
            _raw{{ result_index_array }} = _{{ result_index }} + {{ result_index_offset }};
            {% if result_index_condition %}
            {
                {% if result_index_used %}
                {# The condition could index outside of array range #}
                if (_{{ result_index }} < 0 || _{{ result_index }} >= (long)_{{ result_index_size }})
                {{ invalid_index() | autoindent }}
                {% endif %}
                {{ vector_code['create_cond'] | autoindent }}
                __cond = _cond;
            }
            _cond = __cond;
            {% endif %}
            {% if if_expression != 'True' %}
            if (!_cond) continue;
            {% endif %}
            {% if not result_index_used %}
            if (_{{ result_index }} < 0 || _{{ result_index }} >= (long)_{{ result_index_size }})
            {{ invalid_index() | autoindent }}
            {% endif %}
            {
                {{ vector_code['update'] | autoindent }}
                for (size_t _repetition = 0; _repetition < (size_t)_n; _repetition++) {
                    _new_pre.push_back(_pre_idx);
                    _new_post.push_back(_post_idx);
                }
            }
        }
    }

    const size_t _newsize = _old_size + _new_pre.size();
    {{ _dynamic__synaptic_pre_ptr }}->resize(_newsize);
    {{ _dynamic__synaptic_post_ptr }}->resize(_newsize);
    int32_t* _synaptic_pre_data = {{ _dynamic__synaptic_pre_ptr }}->get_data_ptr();
    int32_t* _synaptic_post_data = {{ _dynamic__synaptic_post_ptr }}->get_data_ptr();
    if (!_new_pre.empty()) {
        std::memcpy(_synaptic_pre_data + _old_size, _new_pre.data(), _new_pre.size() * sizeof(int32_t));
        std::memcpy(_synaptic_post_data + _old_size, _new_post.data(), _new_post.size() * sizeof(int32_t));
    }
    int32_t* _N_incoming_data = {{ _dynamic_N_incoming_ptr }}->get_data_ptr();
    int32_t* _N_outgoing_data = {{ _dynamic_N_outgoing_ptr }}->get_data_ptr();
    for (size_t _i = _old_size; _i < _newsize; _i++) {
        _N_outgoing_data[_synaptic_pre_data[_i]] += 1;
        _N_incoming_data[_synaptic_post_data[_i]] += 1;
    }
    {% include 'synapses_resize.cpp' %}
{% endblock %}
