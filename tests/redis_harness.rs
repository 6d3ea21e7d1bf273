//! The test harness really provides a Redis that answers.
mod common;

#[tokio::test]
async fn harness_redis_answers_ping() {
    let client = redis::Client::open(common::redis_url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
    assert_eq!(pong, "PONG");
}
