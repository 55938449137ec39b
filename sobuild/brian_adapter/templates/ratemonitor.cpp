{# USES_VARIABLES { N, t, rate, _clock_t, _clock_dt, _spikespace,
                    _num_source_neurons, _source_start, _source_stop } #}
{% extends 'common_group.cpp' %}

{% block maincode %}
    size_t _num_spikes = {{ _spikespace }}[_num_spikespace - 1];
    // For subgroups, we do not want to record all spikes (spikes are ordered)
    size_t _start_idx = _num_spikes;
    size_t _end_idx = _num_spikes;
    for (size_t _j = 0; _j < _num_spikes; _j++) {
        if ({{ _spikespace }}[_j] >= _source_start) {
            _start_idx = _j;
            break;
        }
    }
    for (size_t _j = _start_idx; _j < _num_spikes; _j++) {
        if ({{ _spikespace }}[_j] >= _source_stop) {
            _end_idx = _j;
            break;
        }
    }
    _num_spikes = _end_idx - _start_idx;
    {% set t_array = get_array_name(variables['t'], access_data=False) %}
    {% set rate_array = get_array_name(variables['rate'], access_data=False) %}
    const size_t _new_len = {{ t_array }}_ptr->size() + 1;
    {{ t_array }}_ptr->resize(_new_len);
    {{ rate_array }}_ptr->resize(_new_len);
    {{ N }} = _new_len;
    {{ t_array }}_ptr->get_data_ptr()[_new_len - 1] = {{ _clock_t }};
    {{ rate_array }}_ptr->get_data_ptr()[_new_len - 1] = 1.0 * _num_spikes / {{ _clock_dt }} / _num_source_neurons;
{% endblock %}
