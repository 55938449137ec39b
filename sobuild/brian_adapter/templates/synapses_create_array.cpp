{# USES_VARIABLES { _synaptic_pre, _synaptic_post, sources, targets, N,
 N_incoming, N_outgoing, N_pre, N_post, _source_offset, _target_offset } #}
{# WRITES_TO_READ_ONLY_VARIABLES { _synaptic_pre, _synaptic_post, N, N_incoming, N_outgoing } #}
{% extends 'common_group.cpp' %}

{% block maincode %}
    const size_t _old_size = {{ _dynamic__synaptic_pre_ptr }}->size();
    const size_t _newsize = _old_size + _numsources;
    const size_t _N_pre = {{ constant_or_scalar('N_pre', variables['N_pre']) }};
    const size_t _N_post = {{ constant_or_scalar('N_post', variables['N_post']) }};
    {{ _dynamic_N_incoming_ptr }}->resize(_N_post + _target_offset);
    {{ _dynamic_N_outgoing_ptr }}->resize(_N_pre + _source_offset);
    {{ _dynamic__synaptic_pre_ptr }}->resize(_newsize);
    {{ _dynamic__synaptic_post_ptr }}->resize(_newsize);
    int32_t* _synaptic_pre_data = {{ _dynamic__synaptic_pre_ptr }}->get_data_ptr();
    int32_t* _synaptic_post_data = {{ _dynamic__synaptic_post_ptr }}->get_data_ptr();
    int32_t* _N_incoming_data = {{ _dynamic_N_incoming_ptr }}->get_data_ptr();
    int32_t* _N_outgoing_data = {{ _dynamic_N_outgoing_ptr }}->get_data_ptr();
    for (size_t _idx = 0; _idx < _numsources; _idx++) {
        {# After this code, _real_sources and _real_targets hold the final indices
           (only subgroups need any code here) #}
        const size_t _vectorisation_idx = _idx;
        {{ vector_code | autoindent }}
        _synaptic_pre_data[_old_size + _idx] = _real_sources;
        _synaptic_post_data[_old_size + _idx] = _real_targets;
        _N_outgoing_data[_real_sources]++;
        _N_incoming_data[_real_targets]++;
    }
    {% include 'synapses_resize.cpp' %}
{% endblock %}
