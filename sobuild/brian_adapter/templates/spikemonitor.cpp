{# USES_VARIABLES { N, _clock_t, count, _source_start, _source_stop } #}
{% extends 'common_group.cpp' %}

{% block maincode %}
    {% set _eventspace = get_array_name(eventspace_variable) %}
    size_t _num_events = {{ _eventspace }}[_num{{ eventspace_variable.name }} - 1];
    if (_num_events > 0)
    {
        // For subgroups, we do not want to record all spikes (spikes are ordered)
        size_t _start_idx = _num_events;
        size_t _end_idx = _num_events;
        for (size_t _j = 0; _j < _num_events; _j++) {
            const int32_t _idx = {{ _eventspace }}[_j];
            if (_idx >= _source_start) {
                _start_idx = _j;
                break;
            }
        }
        for (size_t _j = _num_events; _j-- > _start_idx; ) {
            const int32_t _idx = {{ _eventspace }}[_j];
            if (_idx < _source_stop)
                break;
            _end_idx = _j;
        }
        _num_events = _end_idx - _start_idx;
        if (_num_events > 0) {
            // scalar code
            const size_t _vectorisation_idx = 1;
            {{ scalar_code | autoindent }}
            const size_t _curlen = {{ N }};
            const size_t _newlen = _curlen + _num_events;
            {% for varname, var in record_variables | dictsort %}
            {% set dyn_array_name = get_array_name(var, access_data=False) %}
            {{ dyn_array_name }}_ptr->resize(_newlen);
            {{ c_data_type(var.dtype) }}* _{{ varname }}_data = {{ dyn_array_name }}_ptr->get_data_ptr();
            {% endfor %}
            {{ N }} = _newlen;
            for (size_t _j = _start_idx; _j < _end_idx; _j++) {
                const size_t _idx = {{ _eventspace }}[_j];
                const size_t _vectorisation_idx = _idx;
                {{ vector_code | autoindent }}
                {% for varname in record_variables | sort %}
                _{{ varname }}_data[_curlen + _j - _start_idx] = _to_record_{{ varname }};
                {% endfor %}
                {{ count }}[_idx - _source_start]++;
            }
        }
    }
{% endblock %}
