{# ITERATE_ALL { _idx } #}
{# USES_VARIABLES { N } #}
{# ALLOWS_SCALAR_WRITE #}
{% extends 'common_group.cpp' %}

{% block maincode %}
    // scalar code
    const size_t _vectorisation_idx = -1;
    {{ scalar_code | autoindent }}

    for (size_t _idx = 0; _idx < (size_t)N; _idx++)
    {
        const size_t _vectorisation_idx = _idx;
        {{ vector_code | autoindent }}
    }
{% endblock %}
