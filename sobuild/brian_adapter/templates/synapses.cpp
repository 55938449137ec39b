{# USES_VARIABLES { _queue_capsule } #}
{% extends 'common_group.cpp' %}

{% block maincode %}
    size_t _num_spiking_synapses;
    const int32_t* _spike_data = _queue->peek(&_num_spiking_synapses);
    if (_num_spiking_synapses > 0)
    {
        // scalar code
        const size_t _vectorisation_idx = -1;
        {{ scalar_code | autoindent }}
        for (size_t _spiking_synapse_idx = 0; _spiking_synapse_idx < _num_spiking_synapses;
             _spiking_synapse_idx++)
        {
            const size_t _idx = _spike_data[_spiking_synapse_idx];
            const size_t _vectorisation_idx = _idx;
            {{ vector_code | autoindent }}
        }
    }
    _queue->advance();
{% endblock %}
