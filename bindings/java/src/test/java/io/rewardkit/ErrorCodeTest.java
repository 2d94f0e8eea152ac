package io.rewardkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.rewardkit.internal.RewardkitLibrary;
import java.lang.reflect.Field;
import java.util.EnumSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class ErrorCodeTest {
    /** Every RK_ERR_* of the generated interface (so of the header) has its ErrorCode, and no ErrorCode is left over. */
    @Test
    void everyCErrorCodeMapsToAnErrorCode() throws IllegalAccessException {
        Set<ErrorCode> seen = EnumSet.noneOf(ErrorCode.class);
        int count = 0;
        for (Field f : RewardkitLibrary.class.getFields()) {
            if (!f.getName().startsWith("RK_ERR_")) {
                continue;
            }
            int code = f.getInt(null);
            ErrorCode mapped = ErrorCode.of(code);
            assertEquals(f.getName().substring("RK_ERR_".length()), mapped.name(), f.getName() + " = " + code);
            assertEquals(code, mapped.code());
            seen.add(mapped);
            count++;
        }
        assertTrue(count > 0, "no RK_ERR_* constants found");
        assertEquals(EnumSet.complementOf(EnumSet.of(ErrorCode.UNKNOWN)), seen);
    }

    @Test
    void unknownCodesStayVisible() {
        RewardkitException e = new RewardkitException(12345, "from the future");
        assertEquals(ErrorCode.UNKNOWN, e.errorCode());
        assertEquals(12345, e.code());
        assertTrue(e.getMessage().contains("from the future"));
    }
}
