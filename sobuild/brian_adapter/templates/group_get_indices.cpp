{# USES_VARIABLES { N } #}
{% extends 'common_group.cpp' %}

{% block maincode %}
    int32_t* const _elements = static_cast<int32_t*>(_args[1]);
    int64_t _num_elements = 0;
    // scalar code
    const size_t _vectorisation_idx = -1;
    {{ scalar_code | autoindent }}
    for (size_t _idx = 0; _idx < (size_t)N; _idx++) {
        const size_t _vectorisation_idx = _idx;
        {{ vector_code | autoindent }}
        if (_cond)
            _elements[_num_elements++] = _idx;
    }
    *static_cast<int64_t*>(_args[2]) = _num_elements;
{% endblock %}
