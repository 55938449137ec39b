{# USES_VARIABLES { t, _clock_t, _indices, N } #}
{% extends 'common_group.cpp' %}

{% block maincode %}
    const size_t _new_len = {{ N }} + 1;
    {{ _dynamic_t_ptr }}->resize(_new_len);
    {{ _dynamic_t_ptr }}->get_data_ptr()[_new_len - 1] = {{ _clock_t }};

    // scalar code
    const size_t _vectorisation_idx = -1;
    {{ scalar_code | autoindent }}

    {% for varname, var in _recorded_variables | dictsort %}
    {% set array_name = get_array_name(var, access_data=False) %}
    {{ array_name }}_ptr->resize(_new_len, _num_indices);
    {{ c_data_type(var.dtype) }}* const _{{ varname }}_row = {{ array_name }}_ptr->get_data_ptr() + (_new_len - 1) * {{ array_name }}_ptr->stride();
    {% endfor %}
    for (size_t _i = 0; _i < _num_indices; _i++)
    {
        const size_t _idx = {{ _indices }}[_i];
        const size_t _vectorisation_idx = _idx;
        {{ vector_code | autoindent }}
        {% for varname, var in _recorded_variables | dictsort %}
        {% set array_name = get_array_name(var, access_data=False) %}
        _{{ varname }}_row[_i] = _to_record_{{ varname }};
        {% endfor %}
    }
    {{ N }} = _new_len;
{% endblock %}
