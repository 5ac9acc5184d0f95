//! The domain's typed ids in the database: each binds and reads as the `i64` it
//! wraps, through sqlx's `Any` driver (the only one the store uses).

use sqlx::any::{AnyTypeInfo, AnyValueRef};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Any, Database, Decode, Encode, Type};

use crate::domain::ids::*;

macro_rules! integer_columns {
    ($($id:ty),* $(,)?) => {$(
        impl Type<Any> for $id {
            fn type_info() -> AnyTypeInfo {
                <i64 as Type<Any>>::type_info()
            }

            fn compatible(ty: &AnyTypeInfo) -> bool {
                <i64 as Type<Any>>::compatible(ty)
            }
        }

        impl<'q> Encode<'q, Any> for $id {
            fn encode_by_ref(
                &self,
                buf: &mut <Any as Database>::ArgumentBuffer<'q>,
            ) -> Result<IsNull, BoxDynError> {
                <i64 as Encode<'q, Any>>::encode_by_ref(&self.0, buf)
            }
        }

        impl<'r> Decode<'r, Any> for $id {
            fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
                <i64 as Decode<'r, Any>>::decode(value).map(Self)
            }
        }
    )*};
}

integer_columns!(
    ProjectId,
    SpecTaskId,
    WorkSessionId,
    AgentInstanceId,
    AgentThreadId,
    ImplementationTaskId,
    PermissionRequestId,
    CoordinationEventId,
);
