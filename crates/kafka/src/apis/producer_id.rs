//! InitProducerId for idempotent producers.
use crate::errors;
use crate::server::Context;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

pub fn init_producer_id(
    context: &Context,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let transactional_id = request.transactional_id.as_ref().map(|t| t.0.as_str());
    match context.broker.init_producer_id(transactional_id) {
        Ok((producer_id, epoch)) => InitProducerIdResponse::default()
            .with_error_code(errors::NONE)
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch),
        Err(e) => {
            tracing::info!(error = %e, "InitProducerId refused");
            InitProducerIdResponse::default()
                .with_error_code(errors::code(&e))
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
        }
    }
}
