{# Used only for subexpressions: plain arrays are read directly (RuntimeDevice.get_with_array) #}
{# USES_VARIABLES { _group_idx } #}
{% extends 'common_group.cpp' %}

{% block maincode %}
    {{ c_data_type(variables['_variable'].dtype) }}* const _elements = static_cast<{{ c_data_type(variables['_variable'].dtype) }}*>(_args[1]);
    // scalar code
    const size_t _vectorisation_idx = -1;
    {{ scalar_code | autoindent }}
    for (size_t _idx_group_idx = 0; _idx_group_idx < _num_group_idx; _idx_group_idx++) {
        const size_t _idx = {{ _group_idx }}[_idx_group_idx];
        const size_t _vectorisation_idx = _idx;
        {{ vector_code | autoindent }}
        _elements[_idx_group_idx] = _variable;
    }
    *static_cast<int64_t*>(_args[2]) = _num_group_idx;
{% endblock %}
