{# USES_VARIABLES { N } #}
{% extends 'common_group.cpp' %}

{% block maincode %}
    {# t, not_refractory and lastspike are added as needed_variables in the
       Thresholder class, we cannot use the USES_VARIABLE mechanism
       conditionally #}
    {% set _eventspace = get_array_name(eventspace_variable) %}
    // scalar code
    const size_t _vectorisation_idx = -1;
    {{ scalar_code | autoindent }}

    int32_t _count = 0;
    for (size_t _idx = 0; _idx < (size_t)N; _idx++)
    {
        const size_t _vectorisation_idx = _idx;
        {{ vector_code | autoindent }}
        if (_cond) {
            {{ _eventspace }}[_count++] = _idx;
            {% if _uses_refractory %}
            {{ not_refractory }}[_idx] = false;
            {{ lastspike }}[_idx] = {{ t }};
            {% endif %}
        }
    }
    {{ _eventspace }}[N] = _count;
{% endblock %}

{% block after_code %}
    {% set _eventspace = get_array_name(eventspace_variable) %}
    {{ _eventspace }}[N] = 0;  // not an off-by-one error: the array has N+1 elements
{% endblock %}
